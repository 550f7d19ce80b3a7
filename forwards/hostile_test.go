package forwards

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/internal/testkit"
)

// A hostile peer, in these tests, is the raw dilation side of a pair
// whose other side runs the Forwarder under test: it opens subchannels and
// writes frames as it likes.

// hostileSession starts a Forwarder with policy and lim (nil: the
// defaults) and returns the peer's side of the connection.
func hostileSession(t *testing.T, policy *Policy, lim *limits) (peer *dilation.Conn, f *Forwarder, events *eventLog) {
	t.Helper()
	peer, ours := dilatedPair(t)
	events = &eventLog{}
	f, err := Start(ours, Config{Policy: policy, OnEvent: events.add, PeerIsGander: true, limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return peer, f, events
}

func shortLimits() *limits {
	l := defaultLimits
	l.handshakeTimeout = 300 * time.Millisecond
	l.listenerHandover = 100 * time.Millisecond
	return &l
}

// peerChannel is a subchannel the hostile peer opened, with what it reads
// gathered in order by a goroutine: frames, then the end.
type peerChannel struct {
	sc    *dilation.Subchannel
	reads chan peerRead
}

// peerRead is a frame, or the error that ended the subchannel.
type peerRead struct {
	body []byte
	err  error
}

func openPeerChannel(t *testing.T, peer *dilation.Conn, subprotocol string) *peerChannel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := peer.Open(ctx, subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	c := &peerChannel{sc: sc, reads: make(chan peerRead, 64)}
	// Reading sends the OPEN, even if the peer never writes.
	go func() {
		r := bufio.NewReader(sc)
		for {
			body, err := readFrame(r)
			c.reads <- peerRead{body, err}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *peerChannel) send(t *testing.T, msg any) {
	t.Helper()
	if err := writeFrame(c.sc, msg); err != nil {
		t.Fatal(err)
	}
}

// next returns the next frame, decoded into msg, or fails after timeout.
func (c *peerChannel) next(t *testing.T, msg any, timeout time.Duration) {
	t.Helper()
	select {
	case read := <-c.reads:
		if read.err != nil {
			t.Fatalf("the subchannel ended (%v) without an answer", read.err)
		}
		if err := decodeMessage(read.body, msg); err != nil {
			t.Fatal(err)
		}
	case <-time.After(timeout):
		t.Fatalf("no answer within %v", timeout)
	}
}

// waitEnd fails unless the subchannel ends within timeout.
func (c *peerChannel) waitEnd(t *testing.T, timeout time.Duration) {
	t.Helper()
	for {
		select {
		case read := <-c.reads:
			if read.err != nil {
				return
			}
		case <-time.After(timeout):
			t.Fatalf("the subchannel is still open after %v", timeout)
		}
	}
}

func (c *peerChannel) requestListener(t *testing.T, name string, port int) listenResponse {
	t.Helper()
	req := listenRequest{Kind: kindRequestListener, UniqueName: name}
	if port != 0 {
		req.ListenPort = &port
	}
	c.send(t, req)
	var resp listenResponse
	c.next(t, &resp, 10*time.Second)
	return resp
}

func countListening(events *eventLog) int {
	events.mu.Lock()
	defer events.mu.Unlock()
	n := 0
	for _, e := range events.events {
		if _, ok := e.(Listening); ok {
			n++
		}
	}
	return n
}

// Finding 4: however often the peer asks for a name, there is one
// listener for it, and a refusal with a reason for the repeats.
func TestRepeatedListenRequestsShareOneListener(t *testing.T) {
	policy := NewPolicy(nil)
	policy.AddLocal(Local{Name: "web", BindAddr: "127.0.0.1"})
	peer, _, events := hostileSession(t, policy, shortLimits())

	first := openPeerChannel(t, peer, commandsSubprotocol)
	if resp := first.requestListener(t, "web", 0); !resp.Listening {
		t.Fatalf("first request refused: %+v", resp)
	}
	for i := range 5 {
		again := first
		if i%2 == 1 {
			again = openPeerChannel(t, peer, commandsSubprotocol)
		}
		resp := again.requestListener(t, "web", 0)
		if resp.Listening || resp.Reason != "Already listening for web" {
			t.Fatalf("repeat %d: %+v, want a refusal saying it already listens", i, resp)
		}
	}
	if n := countListening(events); n != 1 {
		t.Fatalf("%d listeners for one name", n)
	}
	// Withdrawing the offer frees the name.
	first.sc.Close()
	if resp := openPeerChannel(t, peer, commandsSubprotocol).requestListener(t, "web", 0); !resp.Listening {
		t.Fatalf("request after the first channel closed: %+v", resp)
	}
}

// Finding 4: the peer makes us open at most maxPeerListeners listeners.
func TestPeerListenersAreCapped(t *testing.T) {
	policy := NewPolicy(nil)
	policy.AllowListen("*")
	peer, f, _ := hostileSession(t, policy, nil)
	var channels []*peerChannel
	for i := range maxPeerListeners + 3 {
		c := openPeerChannel(t, peer, commandsSubprotocol)
		channels = append(channels, c)
		resp := c.requestListener(t, fmt.Sprint("svc-", i), 0)
		switch {
		case i < maxPeerListeners && !resp.Listening:
			t.Fatalf("request %d refused: %+v", i, resp)
		case i >= maxPeerListeners && (resp.Listening || resp.Reason != fmt.Sprintf("Too many listeners for the peer (at most %d)", maxPeerListeners)):
			t.Fatalf("request %d beyond the bound: %+v", i, resp)
		}
	}
	// Names the peer gave up are forgotten, counters and all.
	for _, c := range channels {
		c.sc.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.Stats()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d services still counted after the peer closed their channels", len(f.Stats()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Finding 5: the peer's port is used only where the local user chose it.
func TestPeerCannotChooseTheListeningPort(t *testing.T) {
	policy := NewPolicy(nil)
	policy.AddLocal(Local{Name: "web", BindAddr: "127.0.0.1"})
	policy.AllowListen("dev-*")
	peer, _, events := hostileSession(t, policy, nil)
	wanted := freeTestPort(t)
	for _, req := range []struct {
		name string
		port int
	}{{"web", wanted}, {"dev-ssh", 22}, {"dev-web", 80}} {
		resp := openPeerChannel(t, peer, commandsSubprotocol).requestListener(t, req.name, req.port)
		if !resp.Listening {
			t.Fatalf("%s: %+v", req.name, resp)
		}
		l := events.waitFor(t, func(e Event) bool { l, ok := e.(Listening); return ok && l.Service == req.name }).(Listening)
		_, port, _ := net.SplitHostPort(l.Addr)
		if port == strconv.Itoa(req.port) {
			t.Fatalf("%s listens on the port the peer chose: %s", req.name, l.Addr)
		}
	}
}

func freeTestPort(t *testing.T) int {
	t.Helper()
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Finding 5: the dialog shows the port that will be used, which is the
// peer's only if unprivileged.
func TestAskedPortRules(t *testing.T) {
	var asked []int
	p := NewPolicy(func(_ context.Context, req ListenRequest) (Grant, error) {
		asked = append(asked, req.Port)
		return Grant{Decision: AllowOnce, Port: req.Port}, nil
	})
	ctx := context.Background()
	for _, tt := range []struct{ requested, want int }{{22, 0}, {1023, 0}, {0, 0}, {2222, 2222}} {
		l, err := p.listen(ctx, "svc", tt.requested)
		if err != nil || l.ListenPort != tt.want {
			t.Errorf("requested %d: %+v, %v; want port %d", tt.requested, l, err, tt.want)
		}
		if shown := asked[len(asked)-1]; shown != tt.want {
			t.Errorf("requested %d: the user was shown port %d, want %d", tt.requested, shown, tt.want)
		}
	}
}

// Finding 6: subchannels that never send their request are closed after
// the handshake timeout, with a reason, and hold nothing after.
func TestSilentSubchannelsTimeOut(t *testing.T) {
	peer, _, _ := hostileSession(t, nil, shortLimits())
	baseline := runtime.NumGoroutine()
	var silent []*peerChannel
	for range 8 {
		silent = append(silent, openPeerChannel(t, peer, forwardSubprotocol))
	}
	for range 3 {
		silent = append(silent, openPeerChannel(t, peer, commandsSubprotocol))
	}
	for i, c := range silent {
		var reply struct {
			Reason string `msgpack:"reason"`
		}
		c.next(t, &reply, 5*time.Second)
		if !strings.HasPrefix(reply.Reason, "No request within") {
			t.Errorf("silent subchannel %d was told %q", i, reply.Reason)
		}
		c.waitEnd(t, 5*time.Second)
	}
	// Nothing is left of them on either side.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the silent subchannels", runtime.NumGoroutine(), baseline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Finding 6: at most maxPendingHandshakes subchannels wait for their
// request; the peer is told why beyond.
func TestPendingHandshakesAreCapped(t *testing.T) {
	peer, _, _ := hostileSession(t, nil, nil)
	const extra = 5
	var channels []*peerChannel
	for range maxPendingHandshakes + extra {
		channels = append(channels, openPeerChannel(t, peer, forwardSubprotocol))
	}
	want := fmt.Sprintf("Too many subchannels waiting for their first message (at most %d)", maxPendingHandshakes)
	refused := 0
	deadline := time.After(10 * time.Second)
	for refused < extra {
		for _, c := range channels {
			select {
			case read := <-c.reads:
				if read.err != nil {
					continue // the end after the refusal
				}
				var reply forwardReply
				if err := decodeMessage(read.body, &reply); err != nil || reply.Connected || reply.Reason != want {
					t.Fatalf("reply %+v, %v; want %q", reply, err, want)
				}
				refused++
			case <-deadline:
				t.Fatalf("%d of %d subchannels beyond the bound refused", refused, extra)
			default:
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	for _, c := range channels {
		select {
		case read := <-c.reads:
			if read.err == nil {
				t.Fatal("more subchannels refused than beyond the bound")
			}
		default:
		}
	}
}

// Finding 6: the peer's open command channels and the frames on each are
// bounded.
func TestCommandChannelsAreCapped(t *testing.T) {
	lim := shortLimits()
	lim.handshakeTimeout = time.Minute
	lim.commandChannels = 3
	peer, _, _ := hostileSession(t, nil, lim)
	for i := range 3 {
		c := openPeerChannel(t, peer, commandsSubprotocol)
		if i == 0 {
			// One frame too many closes the channel.
			for range lim.framesPerCommandChannel + 1 {
				c.send(t, map[string]string{"kind": "nonsense"})
			}
			c.waitEnd(t, 5*time.Second)
		}
	}
	time.Sleep(100 * time.Millisecond) // the closed channel gives its token back
	c := openPeerChannel(t, peer, commandsSubprotocol)
	if resp := c.requestListener(t, "x", 0); resp.Reason != "No service permitted for name: x" {
		t.Fatalf("third open channel: %+v", resp)
	}
	c = openPeerChannel(t, peer, commandsSubprotocol)
	var resp listenResponse
	c.next(t, &resp, 5*time.Second)
	if resp.Listening || resp.Reason != "Too many open command channels (at most 3)" {
		t.Fatalf("fourth open channel: %+v", resp)
	}
	c.waitEnd(t, 5*time.Second)
}

// Finding 6: the peer's open connections to our daemons are bounded.
func TestPeerConnectionsAreCapped(t *testing.T) {
	lim := shortLimits()
	lim.connections = 3
	policy := NewPolicy(nil)
	policy.AddRemote(Remote{Name: "echo", Address: "127.0.0.1", ConnectPort: testkit.UpperEchoServer(t)})
	peer, _, _ := hostileSession(t, policy, lim)
	var open []*peerChannel
	for range 3 {
		c := openPeerChannel(t, peer, forwardSubprotocol)
		c.send(t, forwardRequest{UniqueName: "echo"})
		var reply forwardReply
		if c.next(t, &reply, 5*time.Second); !reply.Connected {
			t.Fatalf("connection within the bound refused: %+v", reply)
		}
		open = append(open, c)
	}
	c := openPeerChannel(t, peer, forwardSubprotocol)
	c.send(t, forwardRequest{UniqueName: "echo"})
	var reply forwardReply
	if c.next(t, &reply, 5*time.Second); reply.Connected || reply.Reason != "Too many connections from the peer (at most 3)" {
		t.Fatalf("connection beyond the bound: %+v", reply)
	}
	open[0].sc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := openPeerChannel(t, peer, forwardSubprotocol)
		c.send(t, forwardRequest{UniqueName: "echo"})
		var reply forwardReply
		if c.next(t, &reply, 5*time.Second); reply.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection did not free its place: %+v", reply)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Names the peer sends are refused if too long or invisible, and
// reported quoted and short.
func TestBadPeerServiceNames(t *testing.T) {
	policy := NewPolicy(nil)
	policy.AllowListen("*")
	peer, _, events := hostileSession(t, policy, nil)
	for _, name := range []string{strings.Repeat("x", maxServiceNameBytes+1), "web\u202egnp.exe", "a\x1b[2Jb", "bad\xffutf8"} {
		resp := openPeerChannel(t, peer, commandsSubprotocol).requestListener(t, name, 0)
		if resp.Listening || !strings.HasPrefix(resp.Reason, "Bad service name: ") {
			t.Fatalf("%q: %+v", name, resp)
		}
		r := events.waitFor(t, func(e Event) bool { r, ok := e.(Refused); return ok && r.Service == printableName(name) }).(Refused)
		if len(r.Service) > 80 || strings.ContainsAny(r.Service, "\x1b\u202e") {
			t.Fatalf("refusal reported as %q", r.Service)
		}
	}
	c := openPeerChannel(t, peer, forwardSubprotocol)
	c.send(t, forwardRequest{UniqueName: "x\u202e"})
	var reply forwardReply
	if c.next(t, &reply, 5*time.Second); reply.Connected || !strings.HasPrefix(reply.Reason, "Bad service name: ") {
		t.Fatalf("connection for a bad name: %+v", reply)
	}
}

// Finding 6, our side: a peer that never answers a forwarded connection
// does not hold it (and its socket) for ever.
func TestUnansweredConnectionTimesOut(t *testing.T) {
	policy := NewPolicy(nil)
	policy.AddLocal(Local{Name: "web", BindAddr: "127.0.0.1"})
	peer, _, events := hostileSession(t, policy, shortLimits())
	forwards, err := peer.Listen(forwardSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	if resp := openPeerChannel(t, peer, commandsSubprotocol).requestListener(t, "web", 0); !resp.Listening {
		t.Fatal(resp)
	}
	addr := events.waitFor(t, func(e Event) bool { _, ok := e.(Listening); return ok }).(Listening).Addr
	client, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sc, err := forwards.Accept(ctx) // and never answered
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(client); err != nil {
		t.Fatalf("the local connection was not closed: %v", err)
	}
	closed := events.waitFor(t, func(e Event) bool { _, ok := e.(ConnectionClosed); return ok }).(ConnectionClosed)
	if !errors.Is(closed.Err, ErrHandshakeTimeout) {
		t.Fatalf("connection closed with %v, want ErrHandshakeTimeout", closed.Err)
	}
}

// A peer asking again and again is refused each time, but the user sees
// only the first refusals.
func TestRefusalsAreReportedUpToABound(t *testing.T) {
	lim := shortLimits()
	lim.refusalsReported = 3
	peer, _, events := hostileSession(t, nil, lim)
	for range 5 {
		c := openPeerChannel(t, peer, forwardSubprotocol)
		c.send(t, forwardRequest{UniqueName: "ssh"})
		var reply forwardReply
		if c.next(t, &reply, 5*time.Second); reply.Connected || reply.Reason != "Against local policy" {
			t.Fatalf("reply %+v", reply)
		}
	}
	events.waitFor(t, func(e Event) bool {
		p, ok := e.(Problem)
		return ok && strings.Contains(p.Err.Error(), "further refusals")
	})
	events.mu.Lock()
	defer events.mu.Unlock()
	refused := 0
	for _, e := range events.events {
		if _, ok := e.(Refused); ok {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d refusals reported, want 3", refused)
	}
}
