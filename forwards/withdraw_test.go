package forwards

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// The peer's side of a removal (issue 14, item 1): what one side removes
// ends on the other side too, with an event that says the peer did it.

// startWatchedShout is startShoutService with the offerer's events too.
func startWatchedShout(t *testing.T) (offerer, accepter *Forwarder, offerEvents, acceptEvents *eventLog, addr string) {
	t.Helper()
	a, b := dilatedPair(t)
	daemon := testkit.UpperEchoServer(t)
	offerer, offerEvents = startForwarder(t, a, nil)
	policy := NewPolicy(nil)
	policy.AddLocal(Local{Name: "shout", BindAddr: "127.0.0.1"})
	accepter, acceptEvents = startForwarder(t, b, policy)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := offerer.Offer(ctx, Remote{Name: "shout", ConnectPort: daemon, Address: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	addr = acceptEvents.waitFor(t, func(e Event) bool { _, ok := e.(Listening); return ok }).(Listening).Addr
	return offerer, accepter, offerEvents, acceptEvents, addr
}

func isWithdrawn(ours bool) func(Event) bool {
	return func(e Event) bool { w, ok := e.(Withdrawn); return ok && w.Service == "shout" && w.Ours == ours }
}

func waitClosed(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still listens", addr)
		}
	}
}

func TestOffererRemovesAndTheAccepterIsTold(t *testing.T) {
	offerer, _, offerEvents, acceptEvents, addr := startWatchedShout(t)
	offerer.Remove("shout")
	acceptEvents.waitFor(t, isWithdrawn(false))
	waitClosed(t, addr)
	if n := len(acceptEvents.matching(isWithdrawn(false))); n != 1 {
		t.Errorf("%d Withdrawn events at the accepter", n)
	}
	time.Sleep(100 * time.Millisecond)
	if got := offerEvents.matching(isWithdrawn(true)); len(got) != 0 {
		t.Errorf("the offerer, who removed it, was told the peer withdrew it: %v", got)
	}
	if got := acceptEvents.matching(func(e Event) bool { _, ok := e.(Problem); return ok }); len(got) != 0 {
		t.Errorf("problems: %v", got)
	}
}

func TestAccepterRemovesAndTheOffererIsTold(t *testing.T) {
	offerer, accepter, offerEvents, acceptEvents, addr := startWatchedShout(t)
	accepter.Remove("shout")
	waitClosed(t, addr)
	offerEvents.waitFor(t, isWithdrawn(true))
	// The offer is over: the peer may no longer connect to the daemon.
	if _, err := offerer.policy.connect("shout"); err == nil {
		t.Error("the daemon is still allowed after the peer stopped listening")
	}
	if got := offerer.Stats(); len(got) != 0 {
		t.Errorf("the withdrawn offer is still in the stats: %+v", got)
	}
	time.Sleep(100 * time.Millisecond)
	for _, l := range []*eventLog{offerEvents, acceptEvents} {
		if got := l.matching(func(e Event) bool { _, ok := e.(Problem); return ok }); len(got) != 0 {
			t.Errorf("problems: %v", got)
		}
	}
	if got := acceptEvents.matching(isWithdrawn(false)); len(got) != 0 {
		t.Errorf("the accepter, who removed it, was told the peer withdrew it: %v", got)
	}
}

func TestCloseWithdrawsNothing(t *testing.T) {
	// (The offerer then sees its offer's channel close: for it the
	// peer did stop listening.)
	_, accepter, _, acceptEvents, _ := startWatchedShout(t)
	accepter.Close()
	if got := acceptEvents.matching(func(e Event) bool { _, ok := e.(Withdrawn); return ok }); len(got) != 0 {
		t.Errorf("the accepter, closing, reported a withdrawal: %v", got)
	}
}

// The user's port from the dialog is used; allowed always, it stays the
// service's, whatever port the peer asks for next (issue 14, item 13).
func TestGrantedPort(t *testing.T) {
	var asked int
	p := NewPolicy(func(_ context.Context, req ListenRequest) (Grant, error) {
		asked++
		return Grant{Decision: AllowAlways, Port: 9000}, nil
	})
	for _, requested := range []int{8080, 0, 8081} {
		l, err := p.listen(context.Background(), "web", requested)
		if err != nil || l.ListenPort != 9000 {
			t.Errorf("requested %d: %+v, %v", requested, l, err)
		}
	}
	if asked != 1 {
		t.Errorf("asked %d times, want once", asked)
	}
	refuse := NewPolicy(func(context.Context, ListenRequest) (Grant, error) { return Grant{}, ErrRefusedByUser })
	_, err := refuse.listen(context.Background(), "web", 0)
	var denied *DeniedError
	if !errors.As(err, &denied) || !RefusedByUser(denied.Reason) || NotPermitted(denied.Reason) ||
		denied.Reason != "No service permitted for name: web (refused by the user)" {
		t.Errorf("the user's no: %v", err)
	}
	bad := NewPolicy(func(context.Context, ListenRequest) (Grant, error) {
		return Grant{Decision: AllowOnce, Port: 70000}, nil
	})
	if _, err := bad.listen(context.Background(), "web", 0); err == nil {
		t.Error("port 70000 allowed")
	}
	if a, b, ok := PortMismatch("Desired port 80 does not match 8080"); !ok || a != 80 || b != 8080 {
		t.Errorf("PortMismatch: %d %d %v", a, b, ok)
	}
}

// An offer withdrawn while its question waits for the user withdraws the
// question: the Asker's context ends.
func TestWithdrawnWhileAsking(t *testing.T) {
	a, b := dilatedPair(t)
	offerer, _ := startForwarder(t, a, nil)
	asking, gaveUp := make(chan struct{}), make(chan struct{})
	startForwarder(t, b, NewPolicy(func(ctx context.Context, _ ListenRequest) (Grant, error) {
		close(asking)
		<-ctx.Done()
		close(gaveUp)
		return Grant{}, nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	offered := make(chan error, 1)
	go func() {
		_, err := offerer.Offer(ctx, Remote{Name: "docs", ConnectPort: testkit.UpperEchoServer(t), Address: "127.0.0.1"})
		offered <- err
	}()
	<-asking
	cancel() // the offerer gives up: its request channel closes
	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatal("the question still waits after the offer was withdrawn")
	}
	if err := <-offered; err == nil {
		t.Fatal("the withdrawn offer succeeded")
	}
}

// Removing an offer the peer is still deciding about withdraws the
// question there and ends the Offer, which does not come back to life.
func TestRemovedWhileAsking(t *testing.T) {
	a, b := dilatedPair(t)
	offerer, offerEvents := startForwarder(t, a, nil)
	asking, gaveUp := make(chan struct{}), make(chan struct{})
	startForwarder(t, b, NewPolicy(func(ctx context.Context, _ ListenRequest) (Grant, error) {
		close(asking)
		<-ctx.Done()
		close(gaveUp)
		return Grant{Decision: AllowOnce}, nil
	}))
	offered := make(chan error, 1)
	go func() {
		_, err := offerer.Offer(context.Background(), Remote{Name: "docs", ConnectPort: testkit.UpperEchoServer(t), Address: "127.0.0.1"})
		offered <- err
	}()
	<-asking
	offerer.Remove("docs")
	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatal("the question still waits after the offer was removed")
	}
	var removed *RemovedError
	if err := <-offered; !errors.As(err, &removed) {
		t.Fatalf("Offer after Remove: %v", err)
	}
	if got := offerEvents.matching(func(e Event) bool { _, ok := e.(AwaitingConnect); return ok }); len(got) != 0 {
		t.Errorf("the removed offer came back: %v", got)
	}
}

// The readers of a peer's refusal reason take any text.
func FuzzRefusalReason(f *testing.F) {
	for _, seed := range []string{"No service permitted for name: web", "No service permitted for name: web (refused by the user)",
		"Desired port 80 does not match 8080", "Desired port -1 does not match 99999999999999999999", "", "\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		if RefusedByUser(reason) && NotPermitted(reason) {
			t.Fatalf("%q is both a person's and the rules'", reason)
		}
		if _, _, ok := PortMismatch(reason); ok && !strings.HasPrefix(reason, "Desired port ") {
			t.Fatalf("%q read as a port mismatch", reason)
		}
	})
}
