package session

import (
	"bufio"
	"context"
	"errors"
	"github.com/gander-pair/gander/internal/testkit"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// recorder collects a session's events and lets a test wait for one.
type recorder struct {
	mu     sync.Mutex
	events []Event
	signal chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) emit(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// runSession runs a session as the tests drive it: commands from a
// channel (nil: none), every event to emit; it returns Wait's error.
func runSession(ctx context.Context, cfg Config, commands <-chan Command, emit func(Event)) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		for {
			select {
			case cmd := <-commands:
				if s.Do(cmd) != nil {
					return
				}
			case <-ended:
				return
			}
		}
	}()
	for ev := range s.Events() {
		emit(ev)
	}
	return s.Wait()
}

func waitEvent[T Event](t *testing.T, r *recorder) T {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if v, ok := e.(T); ok {
				r.mu.Unlock()
				return v
			}
		}
		r.mu.Unlock()
		select {
		case <-r.signal:
		case <-deadline:
			var zero T
			t.Fatalf("no %T event; got %v", zero, r.events)
			return zero
		}
	}
}

// echoDaemon is a local service for the forwards: it echoes.
func echoDaemon(t *testing.T) int { return testkit.EchoServer(t) }

// Two sessions over a fake mailbox: one offers a service, the other
// accepts it; a connection goes through; Ctrl-C on one side (its context
// ending) sends fowl's goodbye, the other side answers and ends too.
func TestTwoSessionsForwardAndSayGoodbye(t *testing.T) {
	server := mailboxtest.New(t)
	offerCtx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	offerEvents, acceptEvents := newRecorder(), newRecorder()
	offerDone, acceptDone := make(chan error, 1), make(chan error, 1)

	go func() {
		offerDone <- runSession(offerCtx, Config{
			MailboxURL: server.URL(), Code: "", CodeLength: 2,
			Remotes: []forwards.Remote{{Name: "echo", ConnectPort: echoDaemon(t), Address: "127.0.0.1"}},
		}, allocate(), offerEvents.emit)
	}()
	code := waitEvent[CodeReady](t, offerEvents).Code
	go func() {
		acceptDone <- runSession(context.Background(), Config{
			MailboxURL: server.URL(), Code: code,
			Locals: []forwards.Local{{Name: "echo", BindAddr: "127.0.0.1"}},
		}, nil, acceptEvents.emit)
	}()

	a, b := waitEvent[PeerConnected](t, offerEvents), waitEvent[PeerConnected](t, acceptEvents)
	if string(a.Verifier) != string(b.Verifier) || len(a.Verifier) != 32 {
		t.Fatal("the two sides see different verifiers")
	}
	if !forwards.PeerIsGander(a.PeerVersions) {
		t.Fatalf("peer versions %s do not say gander", a.PeerVersions)
	}
	listening := waitEvent[ServiceListening](t, acceptEvents)
	c, err := net.Dial("tcp", listening.Addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "ping\n" {
		t.Fatalf("through the forward: %q, %v", line, err)
	}

	interrupt()
	for name, done := range map[string]chan error{"offering side": offerDone, "accepting side": acceptDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s ended with %v", name, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not end after the goodbye", name)
		}
	}
	waitEvent[PeerClosing](t, acceptEvents)
	if moods := server.Moods(); len(moods) != 2 || moods[0] != "happy" || moods[1] != "happy" {
		t.Errorf("moods = %v, want two happy", moods)
	}
}

func TestInterruptBeforeThePeerCameIsLonely(t *testing.T) {
	server := mailboxtest.New(t)
	ctx, interrupt := context.WithCancel(context.Background())
	events := newRecorder()
	done := make(chan error, 1)
	go func() {
		done <- runSession(ctx, Config{MailboxURL: server.URL(), CodeLength: 2,
			Locals: []forwards.Local{{Name: "x", BindAddr: "127.0.0.1"}}}, allocate(), events.emit)
	}()
	waitEvent[CodeReady](t, events)
	interrupt()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLonely) {
			t.Fatalf("Wait = %v, want ErrLonely after an interrupt", err)
		}
		if closed := waitEvent[Closed](t, events); !errors.Is(closed.Err, ErrLonely) {
			t.Fatalf("closed with %v, want lonely", closed.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end after the interrupt")
	}
}

// allocate is a command stream that asks for a code and then nothing.
func allocate() <-chan Command {
	commands := make(chan Command, 1)
	commands <- AllocateCode{}
	return commands
}

// pair starts an offering session (our echo service) and a session
// configured by accept, joined with its code; both are interrupted when
// the test ends.
func pair(t *testing.T, accept Config) (offer, acceptor *recorder, acceptCommands chan Command) {
	t.Helper()
	server := mailboxtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	checkNoLeaks(t)
	offer, acceptor = newRecorder(), newRecorder()
	acceptCommands = make(chan Command, 8)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(2)
	go func() {
		defer wg.Done()
		runSession(ctx, Config{
			MailboxURL: server.URL(), CodeLength: 2, CloseTimeout: time.Second,
			Remotes: []forwards.Remote{{Name: "echo", ConnectPort: echoDaemon(t), Address: "127.0.0.1"}},
		}, allocate(), offer.emit)
	}()
	code := waitEvent[CodeReady](t, offer).Code
	accept.MailboxURL, accept.Code, accept.CloseTimeout = server.URL(), code, time.Second
	go func() {
		defer wg.Done()
		runSession(ctx, accept, acceptCommands, acceptor.emit)
	}()
	return offer, acceptor, acceptCommands
}

func echoes(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("through the forward: %q, %v", line, err)
	}
}

// The peer's request is asked, nothing listens until the answer, and an
// allowed service can be removed again.
func TestPeerRequestIsAskedThenRemoved(t *testing.T) {
	_, events, commands := pair(t, Config{AskPeer: true})
	req := waitEvent[PermissionRequest](t, events)
	if req.Request.Service != "echo" {
		t.Fatalf("asked about %+v", req.Request)
	}
	if has[ServiceListening](events) {
		t.Fatal("listening before the answer")
	}
	commands <- Answer{ID: req.ID + 100, Decision: forwards.AllowOnce}
	if failed := waitEvent[CommandFailed](t, events); failed.Err != ErrNoSuchRequest {
		t.Fatalf("answer to an unknown request: %v", failed.Err)
	}
	commands <- Answer{ID: req.ID, Decision: forwards.AllowOnce}
	listening := waitEvent[ServiceListening](t, events)
	echoes(t, listening.Addr)

	commands <- Remove{Service: "echo"}
	waitEvent[ForwardRemoved](t, events)
	if c, err := net.Dial("tcp", listening.Addr); err == nil {
		c.Close()
		t.Fatal("the removed service still listens")
	}
}

func TestDeniedRequestReachesThePeer(t *testing.T) {
	offer, events, commands := pair(t, Config{AskPeer: true})
	req := waitEvent[PermissionRequest](t, events)
	commands <- Answer{ID: req.ID, Decision: forwards.Deny}
	refused := waitEvent[ForwardRefused](t, offer)
	// fowl's reason, and that a person gave it (issue 14).
	if !refused.ByPeer || refused.Service != "echo" || refused.Reason != "No service permitted for name: echo (refused by the user)" {
		t.Fatalf("the peer saw %+v", refused)
	}
	waitEvent[ForwardRefused](t, events)
}

func TestAllowListenPatternNeedsNoAnswer(t *testing.T) {
	_, events, _ := pair(t, Config{AskPeer: true, AllowListen: []string{"ec*"}})
	echoes(t, waitEvent[ServiceListening](t, events).Addr)
	if has[PermissionRequest](events) {
		t.Fatal("asked although --allow-listen matched")
	}
}

// A request still unanswered when the session ends is withdrawn.
func TestUnansweredRequestIsWithdrawnAtClose(t *testing.T) {
	_, events, commands := pair(t, Config{AskPeer: true})
	req := waitEvent[PermissionRequest](t, events)
	commands <- Close{Timeout: time.Second}
	if w := waitEvent[PermissionWithdrawn](t, events); w.ID != req.ID {
		t.Fatalf("withdrew %d, asked %d", w.ID, req.ID)
	}
	waitEvent[Closed](t, events)
}

func has[T Event](r *recorder) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if _, ok := e.(T); ok {
			return true
		}
	}
	return false
}

func checkNoLeaks(t *testing.T) { testkit.CheckNoLeaks(t) }

// The Session contract: Events ends with Closed and is then closed, Wait
// returns Closed's Err, and Do after the end refuses.
func TestSessionLifecycle(t *testing.T) {
	server := mailboxtest.New(t)
	checkNoLeaks(t)
	s, err := Start(context.Background(), Config{MailboxURL: server.URL(), CodeLength: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(Close{Timeout: time.Second}); err != nil {
		t.Fatalf("Do before the end: %v", err)
	}
	var events []Event
	for ev := range s.Events() {
		events = append(events, ev)
	}
	if len(events) != 2 {
		t.Fatalf("events = %#v, want Welcome and Closed", events)
	}
	if _, ok := events[0].(Welcome); !ok {
		t.Errorf("first event %#v, want Welcome", events[0])
	}
	closed, ok := events[1].(Closed)
	if !ok || !errors.Is(closed.Err, ErrLonely) {
		t.Errorf("last event %#v, want Closed with ErrLonely", events[1])
	}
	if err := s.Wait(); !errors.Is(err, ErrLonely) {
		t.Errorf("Wait = %v, want ErrLonely", err)
	}
	if err := s.Do(AllocateCode{}); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("Do after the end = %v, want ErrSessionEnded", err)
	}
}

func TestStartRefusesABadPattern(t *testing.T) {
	if _, err := Start(context.Background(), Config{AllowListen: []string{"["}}); err == nil {
		t.Fatal("Start accepted a bad --allow-listen pattern")
	}
}
