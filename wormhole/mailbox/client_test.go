package mailbox_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gander-pair/gander/internal/testkit"
	"github.com/gander-pair/gander/wormhole/mailbox"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

const appID = "example.com/gander/test"

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func config(srv *mailboxtest.Server) mailbox.Config {
	return mailbox.Config{URL: srv.URL(), AppID: appID, Version: "test",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
}

// dial connects a client that is closed when the test ends.
func dial(t *testing.T, srv *mailboxtest.Server) *mailbox.Client {
	t.Helper()
	c, err := mailbox.Dial(testContext(t), config(srv))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx, mailbox.Happy)
	})
	return c
}

// pair connects two clients to one mailbox: a allocates, b claims.
func pair(t *testing.T, srv *mailboxtest.Server) (a, b *mailbox.Client, nameplate string) {
	t.Helper()
	ctx := testContext(t)
	a, b = dial(t, srv), dial(t, srv)
	nameplate, err := a.Allocate(ctx)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	ma, err := a.Claim(ctx, nameplate)
	if err != nil {
		t.Fatalf("Claim a: %v", err)
	}
	mb, err := b.Claim(ctx, nameplate)
	if err != nil {
		t.Fatalf("Claim b: %v", err)
	}
	if ma != mb {
		t.Fatalf("the sides got different mailboxes: %q and %q", ma, mb)
	}
	return a, b, nameplate
}

func add(t *testing.T, c *mailbox.Client, phase, body string) {
	t.Helper()
	if err := c.Add(testContext(t), phase, []byte(body)); err != nil {
		t.Fatalf("Add %s: %v", phase, err)
	}
}

func recv(t *testing.T, c *mailbox.Client) mailbox.Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("Messages closed: %v", c.Err())
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	panic("unreachable")
}

// expectNone checks that c delivers nothing more: a Ping round trip first
// makes sure the client has handled whatever the server sent before.
func expectNone(t *testing.T, c *mailbox.Client) {
	t.Helper()
	if err := c.Ping(testContext(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	select {
	case m, ok := <-c.Messages():
		if ok {
			t.Fatalf("unexpected message %s %q from %s", m.Phase, m.Body, m.Side)
		}
	case <-time.After(100 * time.Millisecond):
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func commandsOf(srv *mailboxtest.Server, side string) []string {
	var types []string
	for _, c := range srv.Commands() {
		if c.Side == side {
			types = append(types, c.Type)
		}
	}
	return types
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestDialWelcome(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t, mailboxtest.WithMOTD("hello, world"), mailboxtest.WithCurrentCLIVersion("0.24.0"))
	c := dial(t, srv)
	if got := c.Welcome(); got.MOTD != "hello, world" || got.CurrentCLIVersion != "0.24.0" || got.Error != "" {
		t.Errorf("Welcome() = %+v", got)
	}
	if !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(c.Side()) {
		t.Errorf("Side() = %q, want 10 lowercase hex characters", c.Side())
	}
	if err := c.Ping(testContext(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if got := commandsOf(srv, c.Side()); !slices.Equal(got, []string{"ping"}) {
		// bind itself is recorded before the side is known.
		t.Errorf("commands after bind = %v", got)
	}
	if got := srv.Commands()[0]; got != (mailboxtest.Command{Type: "bind"}) {
		t.Errorf("first command = %+v, want bind", got)
	}
}

func TestDialWelcomeError(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t, mailboxtest.WithWelcomeError("this server is closed"))
	c, err := mailbox.Dial(testContext(t), config(srv))
	var we *mailbox.WelcomeError
	if !errors.As(err, &we) || we.Message != "this server is closed" {
		t.Fatalf("Dial = %v, %v; want *WelcomeError", c, err)
	}
	eventually(t, "the connection to close", func() bool { return srv.Live() == 0 })
	if n := len(srv.Commands()); n != 0 {
		t.Errorf("the client sent %d commands to a server that refused it", n)
	}
}

func TestDialUnreachable(t *testing.T) {
	testkit.CheckNoLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := mailbox.Config{URL: "ws://" + addr + "/v1", AppID: appID}
	_, err = mailbox.Dial(testContext(t), cfg)
	var ce *mailbox.ConnectError
	if !errors.As(err, &ce) || ce.URL != cfg.URL {
		t.Fatalf("Dial = %v, want *ConnectError", err)
	}
}

// A first connection that fails its upgrade is fatal too; only later
// losses are retried.
func TestDialServerDown(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	srv.SetDown(true)
	_, err := mailbox.Dial(testContext(t), config(srv))
	var ce *mailbox.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("Dial = %v, want *ConnectError", err)
	}
	if srv.Refused() != 1 {
		t.Errorf("Refused() = %d, want 1", srv.Refused())
	}
}

func TestAllocateClaimList(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	ctx := testContext(t)
	a, b := dial(t, srv), dial(t, srv)

	n, err := a.Allocate(ctx)
	if err != nil || n != "1" {
		t.Fatalf("Allocate = %q, %v; want 1", n, err)
	}
	if again, err := a.Allocate(ctx); err != nil || again != n {
		t.Fatalf("second Allocate = %q, %v; want the same nameplate", again, err)
	}
	if got := count(commandsOf(srv, a.Side()), "allocate"); got != 1 {
		t.Errorf("sent allocate %d times", got)
	}
	n2, err := b.Allocate(ctx)
	if err != nil || n2 != "2" {
		t.Fatalf("b.Allocate = %q, %v; want 2", n2, err)
	}
	list, err := b.List(ctx)
	if err != nil || !slices.Equal(list, []string{"1", "2"}) {
		t.Fatalf("List = %v, %v", list, err)
	}

	mb, err := a.Claim(ctx, n)
	if err != nil || len(mb) != 13 {
		t.Fatalf("Claim = %q, %v", mb, err)
	}
	if again, err := a.Claim(ctx, n); err != nil || again != mb {
		t.Errorf("re-Claim = %q, %v; want %q", again, err, mb)
	}
	if _, err := a.Claim(ctx, "99"); err == nil {
		t.Error("claiming a second nameplate succeeded")
	}
	c := dial(t, srv)
	if mc, err := c.Claim(ctx, n); err != nil || mc != mb {
		t.Fatalf("second side Claim = %q, %v; want %q", mc, err, mb)
	}
}

func TestCrowdedIsServerError(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	ctx := testContext(t)
	_, _, n := pair(t, srv)
	c := dial(t, srv)
	_, err := c.Claim(ctx, n)
	var se *mailbox.ServerError
	if !errors.As(err, &se) || se.Message != "crowded" || !strings.Contains(se.Command, `"claim"`) {
		t.Fatalf("third Claim = %v, want *ServerError crowded", err)
	}
	// A consumer that sees Messages closed must find the reason in Err
	// straight away, without waiting for Done.
	if _, ok := <-c.Messages(); ok {
		t.Error("Messages not closed after a server error")
	}
	if !errors.As(c.Err(), &se) {
		t.Errorf("Err() = %v as Messages closed, want the *ServerError", c.Err())
	}
	<-c.Done()
	if err := c.Add(ctx, "x", nil); !errors.As(err, &se) {
		t.Errorf("Add after the error = %v, want the *ServerError", err)
	}
	if err := c.Close(ctx, mailbox.Errory); !errors.As(err, &se) {
		t.Errorf("Close after the error = %v, want the *ServerError", err)
	}
}

func TestExchange(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, b, n := pair(t, srv)

	add(t, a, "pake", "from a")
	m := recv(t, b)
	if m.Side != a.Side() || m.Phase != "pake" || string(m.Body) != "from a" {
		t.Fatalf("b got %+v", m)
	}
	add(t, b, "pake", "from b")
	add(t, b, "version", "b's version")
	for _, want := range []string{"pake", "version"} {
		if m := recv(t, a); m.Side != b.Side() || m.Phase != want {
			t.Fatalf("a got %+v, want b's %s", m, want)
		}
	}
	// The echoes of our own adds are not delivered.
	expectNone(t, a)
	expectNone(t, b)

	// Each side released the nameplate once, on the peer's first message.
	eventually(t, "both releases", func() bool { return len(srv.Nameplates(appID)) == 0 })
	for _, c := range []*mailbox.Client{a, b} {
		if got := count(commandsOf(srv, c.Side()), "release"); got != 1 {
			t.Errorf("side %s sent release %d times", c.Side(), got)
		}
	}
	_ = n
}

// Adds made before the mailbox is known wait for it.
func TestAddBeforeClaim(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	ctx := testContext(t)
	a, b := dial(t, srv), dial(t, srv)
	add(t, a, "pake", "early")
	n, err := a.Allocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, n); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, b); m.Phase != "pake" || string(m.Body) != "early" {
		t.Fatalf("b got %+v", m)
	}
}

func TestReleaseOnlyAfterPeerMessage(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, b, n := pair(t, srv)
	add(t, a, "pake", "x")
	recv(t, b)
	expectNone(t, a) // a's echo came back; a has still heard nothing from b
	if got := srv.Nameplates(appID); !slices.Equal(got, []string{n}) {
		t.Fatalf("nameplates = %v; a should still hold %s", got, n)
	}
	if count(commandsOf(srv, a.Side()), "release") != 0 {
		t.Fatal("a released before hearing from b")
	}
	eventually(t, "b's release", func() bool { return count(commandsOf(srv, b.Side()), "release") == 1 })
}

func TestCloseSendsReleaseAndMood(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	ctx := testContext(t)
	a, b, _ := pair(t, srv)
	if err := a.Close(ctx, mailbox.Lonely); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := commandsOf(srv, a.Side()); count(got, "release") != 1 || count(got, "close") != 1 {
		t.Errorf("a's commands = %v, want one release and one close", got)
	}
	if got := srv.Moods(); !slices.Equal(got, []string{"lonely"}) {
		t.Errorf("Moods() = %v", got)
	}
	if a.Err() != nil {
		t.Errorf("Err() after a clean Close = %v", a.Err())
	}
	if _, ok := <-a.Messages(); ok {
		t.Error("Messages not closed")
	}
	if err := a.Add(ctx, "x", nil); !errors.Is(err, mailbox.ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
	if err := a.Close(ctx, mailbox.Happy); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := b.Close(ctx, mailbox.Happy); err != nil {
		t.Fatalf("b.Close: %v", err)
	}
	if got := srv.Moods(); !slices.Equal(got, []string{"lonely", "happy"}) {
		t.Errorf("Moods() = %v", got)
	}
	// Both sides closed: the mailbox and its nameplate are gone.
	if got := srv.Nameplates(appID); len(got) != 0 {
		t.Errorf("nameplates after both closed = %v", got)
	}
	eventually(t, "both connections to end", func() bool { return srv.Live() == 0 })
}

func TestCloseUnclaimed(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	c := dial(t, srv)
	if err := c.Close(testContext(t), mailbox.Happy); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := srv.Moods(); len(got) != 0 {
		t.Errorf("an unclaimed client closed a mailbox: %v", got)
	}
}

// Close waits out an outage: the release and close are replayed on the
// next connection.
func TestCloseAcrossOutage(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, _, _ := pair(t, srv)
	srv.SetDown(true)
	srv.DropConnections()
	done := make(chan error, 1)
	go func() { done <- a.Close(testContext(t), mailbox.Scary) }()
	eventually(t, "a refused reconnection", func() bool { return srv.Refused() >= 2 })
	select {
	case err := <-done:
		t.Fatalf("Close returned %v while the server was down", err)
	default:
	}
	srv.SetDown(false)
	if err := <-done; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := srv.Moods(); !slices.Equal(got, []string{"scary"}) {
		t.Errorf("Moods() = %v", got)
	}
}

func TestCloseContextExpires(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, _, _ := pair(t, srv)
	srv.SetDown(true)
	srv.DropConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := a.Close(ctx, mailbox.Happy); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("the client still runs after Close returned")
	}
	srv.SetDown(false) // let b close cleanly
}

// Messages survive dropped connections and an outage, and each phase is
// delivered exactly once although adds are re-sent and the server replays
// the whole mailbox on every open.
func TestReconnectDeliversExactlyOnce(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, b, _ := pair(t, srv)
	const total = 30

	got := map[string]int{}
	received := make(chan struct{})
	go func() {
		defer close(received)
		for len(got) < total {
			m, ok := <-b.Messages()
			if !ok {
				return
			}
			got[m.Phase]++
		}
	}()
	// Adds only queue, so wait for both sides to be back before each drop:
	// two new connections, and the dropped ones gone (the server forgets
	// a connection only once its reader has seen it closed).
	connections := srv.Connections()
	bothBack := func() bool { return srv.Connections() >= connections && srv.Live() == 2 }
	drop := func() {
		srv.DropConnections()
		connections += 2
	}
	for i := range total {
		switch i {
		case 5, 12:
			eventually(t, "both sides connected", bothBack)
			drop()
		case 20:
			eventually(t, "both sides connected", bothBack)
			srv.SetDown(true)
			drop()
		case 25:
			eventually(t, "refused reconnections", func() bool { return srv.Refused() >= 2 })
			srv.SetDown(false)
		}
		add(t, a, fmt.Sprint(i), fmt.Sprintf("body %d", i))
	}
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatalf("received only %d of %d phases", len(got), total)
	}
	expectNone(t, b)
	for i := range total {
		if n := got[fmt.Sprint(i)]; n != 1 {
			t.Errorf("phase %d delivered %d times", i, n)
		}
	}
	eventually(t, "a reconnection after each of the three drops", bothBack)
	// Both directions still work, and nothing stayed pending: a's adds
	// were all echoed back.
	add(t, b, "reply", "ok")
	if m := recv(t, a); m.Phase != "reply" {
		t.Fatalf("a got %+v", m)
	}
}

func TestReplayAfterReconnectNotRedelivered(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, b, _ := pair(t, srv)
	for _, p := range []string{"pake", "version", "0"} {
		add(t, a, p, p)
		if m := recv(t, b); m.Phase != p {
			t.Fatalf("b got %+v, want %s", m, p)
		}
	}
	before := srv.Connections()
	srv.DropConnections()
	eventually(t, "both sides to reconnect", func() bool { return srv.Connections() >= before+2 && srv.Live() == 2 })
	expectNone(t, b) // the replay of pake, version and 0 is dropped
	add(t, a, "1", "new")
	if m := recv(t, b); m.Phase != "1" || string(m.Body) != "new" {
		t.Fatalf("b got %+v, want phase 1", m)
	}
	if n := count(commandsOf(srv, b.Side()), "open"); n != 2 {
		t.Errorf("b sent open %d times, want 2 (the reconnection re-subscribes)", n)
	}
	if n := count(commandsOf(srv, b.Side()), "claim"); n != 1 {
		t.Errorf("b sent claim %d times, want 1 (claimed had arrived)", n)
	}
}

func TestMalformedAndUnknownIgnored(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, b, _ := pair(t, srv)
	for _, raw := range []string{
		`{"type": "message", "side": "intruder"}`,
		`{"type": "message", "side": "intruder", "phase": "x", "body": "not hex"}`,
		`{"type": "frobnicate", "data": [1, 2, 3]}`,
		`not json at all`,
		`[]`,
	} {
		if n := srv.Inject([]byte(raw)); n != 2 {
			t.Fatalf("Inject reached %d clients", n)
		}
	}
	add(t, a, "pake", "still works")
	if m := recv(t, b); m.Phase != "pake" {
		t.Fatalf("b got %+v", m)
	}
	expectNone(t, a)
	if a.Err() != nil || b.Err() != nil {
		t.Fatalf("Err() = %v, %v", a.Err(), b.Err())
	}
	if srv.Connections() != 2 {
		t.Errorf("Connections() = %d; a bad frame caused a reconnection", srv.Connections())
	}
}

func TestOversizeMessageEndsClient(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	c := dial(t, srv)
	pad := strings.Repeat("a", mailbox.MaxMessageSize)
	srv.Inject([]byte(`{"type": "frobnicate", "pad": "` + pad + `"}`))
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client survived an oversize message")
	}
	if err := c.Err(); !errors.Is(err, websocket.ErrMessageTooBig) {
		t.Fatalf("Err() = %v, want ErrMessageTooBig", err)
	}
	time.Sleep(100 * time.Millisecond) // several backoffs
	if srv.Connections() != 1 {
		t.Errorf("Connections() = %d; the client reconnected", srv.Connections())
	}
}

// A frame of exactly MaxMessageSize is still accepted.
func TestMaxSizeMessageAccepted(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	c := dial(t, srv)
	frame := `{"type": "frobnicate", "pad": ""}`
	frame = frame[:len(frame)-2] + strings.Repeat("a", mailbox.MaxMessageSize-len(frame)) + `"}`
	srv.Inject([]byte(frame))
	if err := c.Ping(testContext(t)); err != nil {
		t.Fatalf("Ping after a %d-byte frame: %v", len(frame), err)
	}
}
