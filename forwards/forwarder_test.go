package forwards

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/dilation/dilationtest"
	"github.com/gander-pair/gander/internal/testkit"
)

// dilatedPair connects two gander peers over a fake mailbox.
func dilatedPair(t testing.TB) (a, b *dilation.Conn) {
	t.Helper()
	return dilationtest.Pair(t, dilation.Config{}, dilation.Config{}, dilationtest.App(AppID, AppVersions()))
}

type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) waitFor(t *testing.T, match func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, e := range l.events {
			if match(e) {
				l.mu.Unlock()
				return e
			}
		}
		l.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("event not seen; got %v", l.events)
	return nil
}

func startForwarder(t *testing.T, c *dilation.Conn, policy *Policy) (*Forwarder, *eventLog) {
	t.Helper()
	events := &eventLog{}
	f, err := Start(c, Config{Policy: policy, OnEvent: events.add, PeerIsGander: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, events
}

// shoutService is two gander peers forwarding the echo daemon's service
// "shout": the offerer runs the daemon, the accepter listens at addr.
type shoutService struct {
	offerer, accepter *Forwarder
	acceptEvents      *eventLog
	addr              string
}

func startShoutService(t *testing.T) shoutService {
	t.Helper()
	a, b := dilatedPair(t)
	daemon := testkit.UpperEchoServer(t)
	offerer, _ := startForwarder(t, a, nil)
	acceptPolicy := NewPolicy(nil)
	acceptPolicy.AddLocal(Local{Name: "shout", BindAddr: "127.0.0.1"})
	accepter, acceptEvents := startForwarder(t, b, acceptPolicy)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := offerer.Offer(ctx, Remote{Name: "shout", ConnectPort: daemon, Address: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	listening := acceptEvents.waitFor(t, func(e Event) bool { _, ok := e.(Listening); return ok }).(Listening)
	return shoutService{offerer, accepter, acceptEvents, listening.Addr}
}

func TestForwardThroughThePeer(t *testing.T) {
	s := startShoutService(t)
	for range 3 {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "hello\nworld\n")
		conn.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(conn)
		conn.Close()
		if string(got) != "HELLO\nWORLD\n" {
			t.Fatalf("through the forward: %q", got)
		}
	}
	stats := s.accepter.Stats()
	if len(stats) != 1 || stats[0].Total != 3 || stats[0].BytesOut != 3*12 || stats[0].BytesIn != 3*12 {
		t.Fatalf("stats = %+v", stats)
	}
	closed := s.acceptEvents.waitFor(t, func(e Event) bool { _, ok := e.(ConnectionClosed); return ok }).(ConnectionClosed)
	if closed.Err != nil || closed.BytesIn != 12 || closed.BytesOut != 12 {
		t.Fatalf("first connection closed as %+v, want 12 bytes each way and no error", closed)
	}
}

func TestOpenConnectionsAreCounted(t *testing.T) {
	s := startShoutService(t)
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "hi\n")
	if _, err := io.ReadFull(conn, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Forwarder{s.accepter, s.offerer} {
		// A side counts what it wrote to its socket once the write
		// returned, which may be after the answer arrived here.
		open := f.Connections()
		for deadline := time.Now().Add(10 * time.Second); len(open) == 1 && open[0].BytesIn+open[0].BytesOut < 6 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
			open = f.Connections()
		}
		if len(open) != 1 || open[0].Service != "shout" || open[0].BytesIn != 3 || open[0].BytesOut != 3 || open[0].Since.IsZero() {
			t.Fatalf("open connections %+v, want one for shout with 3 bytes each way", open)
		}
		if open[0].Incoming != (f == s.offerer) {
			t.Errorf("connection's Incoming = %v on the %s", open[0].Incoming, map[bool]string{true: "offerer", false: "accepter"}[f == s.offerer])
		}
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.accepter.Connections())+len(s.offerer.Connections()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still open after close: %+v %+v", s.accepter.Connections(), s.offerer.Connections())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A gander peer is sent a connection's first bytes before it answers; if
// it refuses, they are dropped and the connection ends with its reason.
func TestRefusedConnectionDropsItsFirstBytes(t *testing.T) {
	s := startShoutService(t)
	// The offerer stops allowing connections but keeps its offer.
	s.offerer.Policy().Remove("shout")

	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "hello\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(conn); len(got) != 0 || err != nil {
		t.Fatalf("a refused connection read %q, %v; want a plain close", got, err)
	}
	closed := s.acceptEvents.waitFor(t, func(e Event) bool { _, ok := e.(ConnectionClosed); return ok }).(ConnectionClosed)
	var denied *DeniedError
	if !errors.As(closed.Err, &denied) || denied.Reason != "Against local policy" {
		t.Fatalf("refused connection closed with %v", closed.Err)
	}
}

func TestListenRequestsOutsidePolicyAreRefused(t *testing.T) {
	a, b := dilatedPair(t)
	offerer, offerEvents := startForwarder(t, a, nil)
	var asked []ListenRequest
	var mu sync.Mutex
	ask := func(_ context.Context, req ListenRequest) (Grant, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, req)
		if req.Service == "ok-once" {
			return Grant{Decision: AllowOnce, Port: req.Port}, nil
		}
		return Grant{}, nil
	}
	_, acceptEvents := startForwarder(t, b, NewPolicy(ask))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := offerer.Offer(ctx, Remote{Name: "sneaky", ListenPort: 2222, Address: "127.0.0.1"})
	var denied *DeniedError
	if !errors.As(err, &denied) || denied.Reason != "No service permitted for name: sneaky" {
		t.Fatalf("Offer = %v, want a refusal with fowl's reason", err)
	}
	offerEvents.waitFor(t, func(e Event) bool { r, ok := e.(Refused); return ok && r.ByPeer })
	acceptEvents.waitFor(t, func(e Event) bool { r, ok := e.(Refused); return ok && !r.ByPeer && r.Service == "sneaky" })
	if _, err := offerer.Offer(ctx, Remote{Name: "ok-once", Address: "127.0.0.1"}); err != nil {
		t.Fatalf("a request the user allowed was refused: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[0] != (ListenRequest{"sneaky", 2222}) {
		t.Fatalf("asked %+v", asked)
	}
}

func TestConnectOutsidePolicyIsRefused(t *testing.T) {
	a, b := dilatedPair(t)
	_, events := startForwarder(t, b, nil)
	sc, err := a.Open(context.Background(), forwardSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	writeFrame(sc, forwardRequest{UniqueName: "ssh"})
	body, err := readFrame(bufio.NewReader(sc))
	var reply forwardReply
	if err == nil {
		err = decodeMessage(body, &reply)
	}
	if err != nil || reply.Connected || reply.Reason != "Against local policy" {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	events.waitFor(t, func(e Event) bool { r, ok := e.(Refused); return ok && r.Service == "ssh" })
}

func TestPortRules(t *testing.T) {
	p := NewPolicy(nil)
	p.AddLocal(Local{Name: "fixed", ListenPort: 8080, BindAddr: "127.0.0.1"})
	p.AddLocal(Local{Name: "any", BindAddr: "127.0.0.1"})
	ctx := context.Background()
	if l, err := p.listen(ctx, "fixed", 0); err != nil || l.ListenPort != 8080 {
		t.Errorf("fixed, any requested: %+v %v", l, err)
	}
	if _, err := p.listen(ctx, "fixed", 9090); err == nil || err.Error() != "Desired port 9090 does not match 8080" {
		t.Errorf("fixed, other requested: %v", err)
	}
	// The user gave no port: a random one, whatever the peer asks for.
	if l, err := p.listen(ctx, "any", 9090); err != nil || l.ListenPort != 0 {
		t.Errorf("any, 9090 requested: %+v %v", l, err)
	}
	if _, err := p.connect("any"); err == nil {
		t.Error("connect allowed to a service we only accept")
	}
}

// BenchmarkConnectionSetup is one forwarded connection's setup, from
// connect to the first echoed byte, between two in-process gander peers
// (for profiling; the e2e benchmark compares it with ssh and fowl).
func BenchmarkConnectionSetup(b *testing.B) {
	a, c := dilatedPair(b)
	daemon := testkit.UpperEchoServer(b)
	offerer, err := Start(a, Config{PeerIsGander: true})
	if err != nil {
		b.Fatal(err)
	}
	defer offerer.Close()
	listening := make(chan string, 1)
	acceptPolicy := NewPolicy(nil)
	acceptPolicy.AddLocal(Local{Name: "echo", BindAddr: "127.0.0.1"})
	accepter, err := Start(c, Config{Policy: acceptPolicy, PeerIsGander: true, OnEvent: func(e Event) {
		if l, ok := e.(Listening); ok {
			listening <- l.Addr
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer accepter.Close()
	if _, err := offerer.Offer(context.Background(), Remote{Name: "echo", ConnectPort: daemon, Address: "127.0.0.1"}); err != nil {
		b.Fatal(err)
	}
	addr := <-listening
	line := []byte("e\n")
	b.ResetTimer()
	for range b.N {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conn.Write(line)
		if _, err := io.ReadFull(conn, line); err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// matching returns the events so far for which match holds.
func (l *eventLog) matching(match func(Event) bool) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}
