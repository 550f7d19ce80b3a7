package session

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gander-pair/gander/forwards"
)

// askingController is a controller with no wormhole: enough to drive its
// Asker as the forwarder does, one goroutine per peer request.
func askingController(t *testing.T) (*controller, *recorder) {
	t.Helper()
	events := newRecorder()
	c := &controller{emit: events.emit, asks: newAskQueue(events.emit, 0)}
	t.Cleanup(c.asks.close)
	return c, events
}

// answer is the command loop's handling of an Answer.
func (c *controller) answer(a Answer) {
	if !c.asks.answer(a) {
		c.emit(CommandFailed{Err: ErrNoSuchRequest})
	}
}

// asked is the outcome of one peer request.
type asked struct {
	decision forwards.Decision
	port     int
	reason   error
}

// askAsync asks as the forwarder does and hands back the outcome.
func askAsync(ctx context.Context, c *controller, req forwards.ListenRequest) <-chan asked {
	out := make(chan asked, 1)
	go func() {
		g, reason := c.asks.ask(ctx, req)
		out <- asked{decision: g.Decision, port: g.Port, reason: reason}
	}()
	return out
}

// waiters is how many requests wait for question id.
func waiters(c *controller, id int64) int {
	c.asks.mu.Lock()
	defer c.asks.mu.Unlock()
	if p := c.asks.byID[id]; p != nil {
		return p.waiters
	}
	return 0
}

func count[T Event](r *recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

func waitCount[T Event](t *testing.T, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for count[T](r) < n {
		if time.Now().After(deadline) {
			var zero T
			t.Fatalf("%d %T events, want %d", count[T](r), zero, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func outcome(t *testing.T, ch <-chan asked) asked {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(2 * time.Second):
		t.Fatal("the request is still waiting")
		return asked{}
	}
}

// The same request made many times (one subchannel each) is one question
// to the user, and the one answer goes to all of them.
func TestRepeatedRequestsShareOneQuestion(t *testing.T) {
	c, events := askingController(t)
	web := forwards.ListenRequest{Service: "web", Port: 8080}
	var outcomes []<-chan asked
	for range 50 {
		outcomes = append(outcomes, askAsync(context.Background(), c, web))
	}
	req := waitEvent[PermissionRequest](t, events)
	for deadline := time.Now().Add(5 * time.Second); waiters(c, req.ID) < 50; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait for the question, want 50", waiters(c, req.ID))
		}
	}
	if n := count[PermissionRequest](events); n != 1 {
		t.Fatalf("%d questions for one repeated request, want 1", n)
	}
	c.answer(Answer{ID: req.ID, Decision: forwards.AllowOnce})
	for _, o := range outcomes {
		if got := outcome(t, o); got.decision != forwards.AllowOnce {
			t.Fatalf("a repeat got %v, want the user's answer", got.decision)
		}
	}
}

// At most MaxPendingAsks distinct requests wait for the user; the next is
// refused at once with a reason the peer can read.
func TestPendingQuestionsAreCapped(t *testing.T) {
	c, events := askingController(t)
	const max = MaxPendingAsks
	for i := range max {
		askAsync(context.Background(), c, forwards.ListenRequest{Service: "s", Port: 1000 + i})
	}
	waitCount[PermissionRequest](t, events, max)
	got := outcome(t, askAsync(context.Background(), c, forwards.ListenRequest{Service: "one-too-many"}))
	if got.decision != forwards.Deny || !errors.Is(got.reason, ErrTooManyAsks) {
		t.Fatalf("request over the cap: %v (%v), want deny: too many", got.decision, got.reason)
	}
	if n := count[PermissionRequest](events); n != max {
		t.Fatalf("%d questions, want %d", n, max)
	}
}

// Repeats share a question, but only so many may wait on it.
func TestRepeatsWaitingAreCapped(t *testing.T) {
	c, events := askingController(t)
	web := forwards.ListenRequest{Service: "web"}
	for range MaxWaitersPerAsk {
		askAsync(context.Background(), c, web)
	}
	req := waitEvent[PermissionRequest](t, events)
	for deadline := time.Now().Add(5 * time.Second); waiters(c, req.ID) < MaxWaitersPerAsk; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait for the question, want %d", waiters(c, req.ID), MaxWaitersPerAsk)
		}
	}
	got := outcome(t, askAsync(context.Background(), c, web))
	if got.decision != forwards.Deny || !errors.Is(got.reason, ErrTooManyAsks) {
		t.Fatalf("repeat over the cap: %v (%v), want deny: too many", got.decision, got.reason)
	}
}

// A request the user just denied is denied again without asking.
func TestJustDeniedRequestIsNotAskedAgain(t *testing.T) {
	c, events := askingController(t)
	web := forwards.ListenRequest{Service: "web"}
	first := askAsync(context.Background(), c, web)
	c.answer(Answer{ID: waitEvent[PermissionRequest](t, events).ID, Decision: forwards.Deny})
	outcome(t, first)
	if got := outcome(t, askAsync(context.Background(), c, web)); got.decision != forwards.Deny || !errors.Is(got.reason, ErrDeniedRecently) {
		t.Fatalf("the repeat got %v (%v)", got.decision, got.reason)
	}
	if n := count[PermissionRequest](events); n != 1 {
		t.Fatalf("asked %d times", n)
	}
	// Another request is still asked.
	askAsync(context.Background(), c, forwards.ListenRequest{Service: "db"})
	waitCount[PermissionRequest](t, events, 2)
}

// A question nobody answers is denied after the timeout and withdrawn,
// so the forwarder goroutine waiting on it is let go.
func TestUnansweredQuestionTimesOut(t *testing.T) {
	c, events := askingController(t)
	c.asks.timeout = 50 * time.Millisecond
	got := outcome(t, askAsync(context.Background(), c, forwards.ListenRequest{Service: "web"}))
	if got.decision != forwards.Deny || !errors.Is(got.reason, ErrNoAnswer) {
		t.Fatalf("unanswered: %v (%v), want deny: no answer", got.decision, got.reason)
	}
	req := waitEvent[PermissionRequest](t, events)
	if w := waitEvent[PermissionWithdrawn](t, events); w.ID != req.ID {
		t.Fatalf("withdrew %d, asked %d", w.ID, req.ID)
	}
}

// The peer giving up withdraws the question only once every repeat has
// given up.
func TestQuestionWithdrawnWhenEveryRepeatGivesUp(t *testing.T) {
	c, events := askingController(t)
	web := forwards.ListenRequest{Service: "web"}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	first := askAsync(ctx1, c, web)
	req := waitEvent[PermissionRequest](t, events)
	second := askAsync(ctx2, c, web)
	time.Sleep(20 * time.Millisecond)
	cancel1()
	outcome(t, first)
	if has[PermissionWithdrawn](events) {
		t.Fatal("withdrawn while a repeat still waits")
	}
	cancel2()
	outcome(t, second)
	if w := waitEvent[PermissionWithdrawn](t, events); w.ID != req.ID {
		t.Fatalf("withdrew %d, asked %d", w.ID, req.ID)
	}
}

// DenyAll denies every waiting question; ForSession every later one too.
func TestDenyAll(t *testing.T) {
	c, events := askingController(t)
	var waiting []<-chan asked
	for _, name := range []string{"a", "b", "c"} {
		waiting = append(waiting, askAsync(context.Background(), c, forwards.ListenRequest{Service: name}))
	}
	waitCount[PermissionRequest](t, events, 3)
	c.asks.denyAllPending(false)
	for _, w := range waiting {
		if got := outcome(t, w); got.decision != forwards.Deny || got.reason != forwards.ErrRefusedByUser {
			t.Fatalf("denied-all request: %v (%v), want the user's deny", got.decision, got.reason)
		}
	}
	waitCount[PermissionWithdrawn](t, events, 3)
	// Not for the session: a new request is asked.
	pending := askAsync(context.Background(), c, forwards.ListenRequest{Service: "d"})
	waitCount[PermissionRequest](t, events, 4)
	c.asks.denyAllPending(true)
	outcome(t, pending)
	got := outcome(t, askAsync(context.Background(), c, forwards.ListenRequest{Service: "e"}))
	if got.decision != forwards.Deny || !errors.Is(got.reason, ErrDeniedForSession) {
		t.Fatalf("after deny-all for the session: %v (%v)", got.decision, got.reason)
	}
	if n := count[PermissionRequest](events); n != 4 {
		t.Fatalf("%d questions, want 4", n)
	}
}

// The port of an Answer (issue 14, item 13): 0 as asked, AnyPort any free
// one, else the user's; a user's no says so to the peer.
func TestAnswerPort(t *testing.T) {
	c, events := askingController(t)
	for i, tt := range []struct {
		asked, answer, want int
		decision            forwards.Decision
	}{
		{8080, 0, 8080, forwards.AllowOnce},
		{8080, AnyPort, 0, forwards.AllowAlways},
		{8080, 9000, 9000, forwards.AllowOnce},
		{0, 0, 0, forwards.AllowOnce},
		{0, 9001, 9001, forwards.AllowAlways},
	} {
		got := askAsync(context.Background(), c, forwards.ListenRequest{Service: fmt.Sprint("s", i), Port: tt.asked})
		waitCount[PermissionRequest](t, events, i+1)
		c.answer(Answer{ID: int64(i + 1), Decision: tt.decision, Port: tt.answer})
		if a := outcome(t, got); a.decision != tt.decision || a.port != tt.want || a.reason != nil {
			t.Errorf("asked %d, answered %d: %+v, want port %d", tt.asked, tt.answer, a, tt.want)
		}
	}
	pending := askAsync(context.Background(), c, forwards.ListenRequest{Service: "x"})
	waitCount[PermissionRequest](t, events, 6)
	for _, bad := range []int{-2, 65536} {
		if c.asks.answer(Answer{ID: 6, Decision: forwards.AllowOnce, Port: bad}) {
			t.Errorf("port %d taken", bad)
		}
	}
	c.answer(Answer{ID: 6, Decision: forwards.Deny})
	if a := outcome(t, pending); a.decision != forwards.Deny || a.reason != forwards.ErrRefusedByUser {
		t.Errorf("the user's no: %+v", a)
	}
}
