package forwards

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/internal/testkit"
)

// listeningSession is a Forwarder listening for the hostile peer's
// service "web": the peer accepts the forwarding subchannels of the
// connections made to addr, and answers each with answer.
type listeningSession struct {
	peer   *dilation.Conn
	f      *Forwarder
	events *eventLog
	addr   string
	// accepted counts the forwarding subchannels the peer was offered.
	accepted atomic.Int64
}

func startListeningSession(t *testing.T, lim *limits, answer func(sc *dilation.Subchannel)) *listeningSession {
	t.Helper()
	policy := NewPolicy(nil)
	policy.AddLocal(Local{Name: "web", BindAddr: "127.0.0.1"})
	peer, f, events := hostileSession(t, policy, lim)
	forwards, err := peer.Listen(forwardSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	s := &listeningSession{peer: peer, f: f, events: events}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for {
			sc, err := forwards.Accept(ctx)
			if err != nil {
				return
			}
			s.accepted.Add(1)
			t.Cleanup(func() { sc.Close() })
			go answer(sc)
		}
	}()
	if resp := openPeerChannel(t, peer, commandsSubprotocol).requestListener(t, "web", 0); !resp.Listening {
		t.Fatal(resp)
	}
	s.addr = events.waitFor(t, func(e Event) bool { _, ok := e.(Listening); return ok }).(Listening).Addr
	return s
}

// answerWith reads the forwarding request, sends reply, and closes once
// the other side did.
func answerWith(reply forwardReply) func(sc *dilation.Subchannel) {
	return func(sc *dilation.Subchannel) {
		defer sc.Close()
		var req forwardRequest
		r := bufio.NewReader(sc)
		body, err := readFrame(r)
		if err != nil || decodeMessage(body, &req) != nil {
			return
		}
		writeFrame(sc, reply)
		io.Copy(io.Discard, r)
	}
}

func dialLocal(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether c is closed by the other end within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil
}

// Round 2, item 1: local clients hold at most limits.localConnections
// forwarded connections in the session; beyond it a new connection is
// closed at once, without a subchannel, and the user is told once.
func TestLocalConnectionsAreCapped(t *testing.T) {
	lim := shortLimits()
	lim.handshakeTimeout = time.Minute
	lim.localConnections = 3
	s := startListeningSession(t, lim, answerWith(forwardReply{Connected: true}))
	var held []net.Conn
	for range 3 {
		held = append(held, dialLocal(t, s.addr))
	}
	waitUntil(t, "the peer got the connections within the bound", func() bool { return s.accepted.Load() == 3 })
	for range 2 {
		if extra := dialLocal(t, s.addr); !closedWithin(extra, 2*time.Second) {
			t.Fatal("a connection beyond the bound was kept open")
		}
	}
	if n := s.accepted.Load(); n != 3 {
		t.Fatalf("the peer got %d subchannels, want 3", n)
	}
	s.events.waitFor(t, func(e Event) bool {
		p, ok := e.(Problem)
		return ok && strings.Contains(p.Err.Error(), "Too many local connections to the peer's services (at most 3)")
	})
	problems := 0
	for _, e := range s.events.snapshot() {
		if _, ok := e.(Problem); ok {
			problems++
		}
	}
	if problems != 1 {
		t.Fatalf("%d Problems for the bound, want 1", problems)
	}
	// A connection that ends gives its place back.
	held[0].Close()
	waitUntil(t, "a closed connection freed its place", func() bool {
		c := dialLocal(t, s.addr)
		defer c.Close()
		return !closedWithin(c, 100*time.Millisecond)
	})
}

// flakyListener fails its first Accepts with errs, as a listener out of
// file descriptors does.
type flakyListener struct {
	net.Listener
	errs chan error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		return nil, err
	default:
		return l.Listener.Accept()
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Round 2, item 1: an Accept that fails for want of file descriptors (or
// a connection aborted before it was accepted) does not end the listener:
// it backs off and goes on; only closing it ends the loop.
func TestAcceptSurvivesTemporaryErrors(t *testing.T) {
	s := startListeningSession(t, shortLimits(), answerWith(forwardReply{Connected: true}))
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: inner, errs: make(chan error, 8)}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED} {
		l.errs <- &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	l.errs <- &net.OpError{Op: "accept", Net: "tcp", Err: timeoutError{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.f.acceptConnections(l, "web")
	}()
	dialLocal(t, inner.Addr().String())
	waitUntil(t, "the connection after the errors reached the peer", func() bool { return s.accepted.Load() == 1 })
	select {
	case <-done:
		t.Fatal("the accept loop ended")
	default:
	}
	inner.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the accept loop goes on after its listener closed")
	}
	// The user hears of the first failure only.
	var problems []string
	for _, e := range s.events.snapshot() {
		if p, ok := e.(Problem); ok {
			problems = append(problems, p.Err.Error())
		}
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "accepting a connection for web") || !errors.Is(s.events.problem(0), syscall.EMFILE) {
		t.Fatalf("Problems %q, want one about the first failed Accept", problems)
	}
}

// Round 2, item 2: the reason in the peer's refusal of our connection
// reaches the user cut to maxPeerReasonBytes, with no control or format
// characters.
func TestPeerRefusalReasonsAreCutAndCleaned(t *testing.T) {
	hostile := "\x1b[2J\u202eevil\r\nline\x00" + strings.Repeat("é", 30000) + "\xff"
	s := startListeningSession(t, shortLimits(), answerWith(forwardReply{Reason: hostile}))
	closedWithin(dialLocal(t, s.addr), 5*time.Second)
	closed := s.events.waitFor(t, func(e Event) bool { _, ok := e.(ConnectionClosed); return ok }).(ConnectionClosed)
	var denied *DeniedError
	if !errors.As(closed.Err, &denied) {
		t.Fatalf("closed with %v, want a DeniedError", closed.Err)
	}
	checkPeerText(t, denied.Reason)
	if !strings.HasPrefix(denied.Reason, "\uFFFD[2J\uFFFDevil  line\uFFFDéé") || !strings.HasSuffix(denied.Reason, "…") {
		t.Fatalf("reason shown as %q", denied.Reason)
	}
}

// Round 2, item 2: a refusal of our offer, too.
func TestPeerOfferRefusalReasonIsCutAndCleaned(t *testing.T) {
	peer, f, events := hostileSession(t, nil, shortLimits())
	commands, err := peer.Listen(commandsSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		sc, err := commands.Accept(context.Background())
		if err != nil {
			return
		}
		defer sc.Close()
		if _, err := readFrame(bufio.NewReader(sc)); err != nil {
			return
		}
		writeFrame(sc, listenResponse{Kind: kindListenerResponse, UniqueName: "web", Reason: "\x1b]0;owned\x07" + strings.Repeat("x", 60000)})
		io.Copy(io.Discard, sc)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = f.Offer(ctx, Remote{Name: "web", Address: "127.0.0.1"})
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("Offer = %v, want a DeniedError", err)
	}
	checkPeerText(t, denied.Reason)
	refused := events.waitFor(t, func(e Event) bool { _, ok := e.(Refused); return ok }).(Refused)
	checkPeerText(t, refused.Reason)
}

func checkPeerText(t *testing.T, s string) {
	t.Helper()
	if len(s) > maxPeerReasonBytes || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 {
		t.Fatalf("peer text shown as %d bytes: %q", len(s), s)
	}
}

// Round 2, item 2: a peer refusing every connection has its reasons shown
// for the first limits.refusalsReported only; the connections still end
// with a DeniedError each.
func TestPeerRefusalReasonsAreReportedUpToABound(t *testing.T) {
	lim := shortLimits()
	lim.refusalsReported = 3
	s := startListeningSession(t, lim, answerWith(forwardReply{Reason: "go away"}))
	for range 5 {
		closedWithin(dialLocal(t, s.addr), 5*time.Second)
	}
	var closed []ConnectionClosed
	waitUntil(t, "five connections closed", func() bool {
		closed = closed[:0]
		for _, e := range s.events.snapshot() {
			if c, ok := e.(ConnectionClosed); ok {
				closed = append(closed, c)
			}
		}
		return len(closed) == 5
	})
	shown := 0
	for _, c := range closed {
		var denied *DeniedError
		if !errors.As(c.Err, &denied) {
			t.Fatalf("closed with %v, want a DeniedError", c.Err)
		}
		if denied.Reason == "go away" {
			shown++
		}
	}
	if shown != 3 {
		t.Fatalf("%d of the peer's reasons shown, want 3", shown)
	}
	s.events.waitFor(t, func(e Event) bool {
		p, ok := e.(Problem)
		return ok && strings.Contains(p.Err.Error(), "further reasons are only logged")
	})
}

// Round 2, item 3: there is no idle timeout (as with ssh -L), but closing
// the Forwarder ends every forwarded connection, both ways, idle or
// waiting for the peer, and every goroutine it started.
func TestCloseEndsIdleConnections(t *testing.T) {
	lim := shortLimits()
	lim.handshakeTimeout = time.Minute
	policy := NewPolicy(nil)
	policy.AddLocal(Local{Name: "web", BindAddr: "127.0.0.1"})
	policy.AddRemote(Remote{Name: "echo", Address: "127.0.0.1", ConnectPort: testkit.UpperEchoServer(t)})
	peer, f, events := hostileSession(t, policy, lim)
	forwards, err := peer.Listen(forwardSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp := openPeerChannel(t, peer, commandsSubprotocol).requestListener(t, "web", 0); !resp.Listening {
		t.Fatal(resp)
	}
	addr := events.waitFor(t, func(e Event) bool { _, ok := e.(Listening); return ok }).(Listening).Addr
	// Outgoing: one answered and idle, one never answered.
	answered, unanswered := dialLocal(t, addr), dialLocal(t, addr)
	for i := range 2 {
		sc, err := forwards.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		if i == 0 {
			go answerWith(forwardReply{Connected: true})(sc)
		}
	}
	// Incoming: one to our daemon, idle.
	in := openPeerChannel(t, peer, forwardSubprotocol)
	in.send(t, forwardRequest{UniqueName: "echo"})
	var reply forwardReply
	if in.next(t, &reply, 5*time.Second); !reply.Connected {
		t.Fatal(reply)
	}
	waitUntil(t, "three connections open", func() bool { return len(f.Connections()) == 3 })
	closing := make(chan struct{})
	go func() { f.Close(); close(closing) }()
	select {
	case <-closing:
	case <-time.After(3 * time.Second):
		t.Fatal("Close waits for idle connections")
	}
	for _, c := range []net.Conn{answered, unanswered} {
		if !closedWithin(c, 2*time.Second) {
			t.Fatal("a local connection is open after Close")
		}
	}
	in.waitEnd(t, 2*time.Second)
	if left := testkit.Goroutines("forwards.(*Forwarder).", "forwards.(*connection)."); left != "" {
		t.Fatalf("goroutines of the Forwarder left after Close:\n%s", left)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *eventLog) snapshot() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// problem is the i-th Problem's error.
func (l *eventLog) problem(i int) error {
	for _, e := range l.snapshot() {
		if p, ok := e.(Problem); ok {
			if i == 0 {
				return p.Err
			}
			i--
		}
	}
	return nil
}
