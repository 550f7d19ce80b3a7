package terminal

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gander-pair/gander/internal/testkit"
)

// events collects a host's events for a test.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) waitFor(t *testing.T, match func(Event) bool) Event {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		e.mu.Lock()
		for _, ev := range e.all {
			if match(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
	}
	t.Fatalf("no such event in %#v", e.all)
	return nil
}

// startHost shares `cat` (the PTY echoes what it gets) over an httptest
// server.
func startHost(t *testing.T, readOnly bool) (*Host, *httptest.Server, *events) {
	t.Helper()
	evs := &events{}
	h, err := StartHost(HostConfig{Command: []string{"cat"}, ReadOnly: readOnly, OnEvent: evs.add})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(h))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); h.Close() })
	return h, srv, evs
}

// dialGuest connects a guest to the host behind srv, closed when the test
// ends.
func dialGuest(t *testing.T, srv *httptest.Server) MessageConn {
	t.Helper()
	c, err := Dial(context.Background(), srv.URL+"/s/local/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedRaw sends payload as a raw websocket message to the host behind
// srv, and checks that the host closes the connection with want and that
// the guest's GuestLeft event says why; it returns that event.
func refusedRaw(t *testing.T, srv *httptest.Server, evs *events, payload string, want websocket.StatusCode) GuestLeft {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+wsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte(payload))
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != want {
				t.Fatalf("the guest's connection ended with %v, want %v", err, want)
			}
			break
		}
	}
	return evs.waitFor(t, func(ev Event) bool { _, ok := ev.(GuestLeft); return ok }).(GuestLeft)
}

// readUntil reads the host's messages until its output holds want, and
// returns that output.
func readUntil(t *testing.T, c MessageConn, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got bytes.Buffer
	for !strings.Contains(got.String(), want) {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading for %q (got %q): %v", want, got.String(), err)
		}
		if w, ok := m.(Write); ok {
			got.Write(w.Data)
		}
	}
	return got.String()
}

func TestHostServesAGuest(t *testing.T) {
	testkit.CheckNoLeaks(t)
	h, srv, evs := startHost(t, false)
	ctx := context.Background()
	c := dialGuest(t, srv)
	m, err := c.ReadMessage(ctx)
	if err != nil || m != (WinSize{Cols: 80, Rows: 24}) {
		t.Fatalf("first message %#v, %v; want the window size", m, err)
	}
	evs.waitFor(t, func(ev Event) bool { _, ok := ev.(GuestJoined); return ok })
	if err := c.WriteMessage(ctx, Write{Data: []byte("hello\x1b]52;c;eA==\x07 there\r")}); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "hello there")
	evs.waitFor(t, func(ev Event) bool { d, ok := ev.(InputDropped); return ok && d.Reason == ReasonStringControl })

	// The host resizes: the guest is told.
	if err := h.Resize(WinSize{Cols: 120, Rows: 40}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m == (WinSize{Cols: 120, Rows: 40}) {
			break
		}
	}
}

func TestHostReadOnlyDropsInput(t *testing.T) {
	testkit.CheckNoLeaks(t)
	h, srv, evs := startHost(t, true)
	ctx := context.Background()
	c := dialGuest(t, srv)
	c.WriteMessage(ctx, Write{Data: []byte("secret\r")})
	evs.waitFor(t, func(ev Event) bool {
		d, ok := ev.(InputDropped)
		return ok && d.Reason == ReasonReadOnly && d.Bytes == 7
	})
	// The host's own keys still reach the PTY, and nothing of the guest's.
	h.WriteLocal([]byte("mine\r"))
	readUntil(t, c, "mine")
	// Allowed from now on: the guest types.
	h.SetReadOnly(false)
	c.WriteMessage(ctx, Write{Data: []byte("guest\r")})
	readUntil(t, c, "guest")
}

func TestHostRefusesOversizedMessages(t *testing.T) {
	testkit.CheckNoLeaks(t)
	_, srv, evs := startHost(t, false)
	big := `{"Type":"Write","Data":"` + strings.Repeat("A", MaxMessageBytes) + `"}`
	left := refusedRaw(t, srv, evs, big, websocket.StatusMessageTooBig)
	if left.Err == nil || !strings.Contains(left.Err.Error(), "too big") {
		t.Fatalf("the guest left with %v, want message too big", left.Err)
	}
}

func TestHostRefusesMalformedMessages(t *testing.T) {
	testkit.CheckNoLeaks(t)
	_, srv, evs := startHost(t, false)
	left := refusedRaw(t, srv, evs, `{"Type":"Write","Data":"!!"}`, websocket.StatusUnsupportedData)
	if !errors.Is(left.Err, ErrBadMessage) {
		t.Fatalf("the guest left with %v, want ErrBadMessage", left.Err)
	}
}

func TestHostRefusesTooManyGuests(t *testing.T) {
	testkit.CheckNoLeaks(t)
	_, srv, evs := startHost(t, false)
	ctx := context.Background()
	for i := 0; i < MaxGuests; i++ {
		dialGuest(t, srv)
	}
	for n := 0; n < MaxGuests; {
		evs.mu.Lock()
		n = 0
		for _, ev := range evs.all {
			if _, ok := ev.(GuestJoined); ok {
				n++
			}
		}
		evs.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := Dial(ctx, srv.URL+"/s/local/"); err == nil {
		t.Fatal("a guest beyond MaxGuests was let in")
	}
	resp, err := http.Get(srv.URL + wsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %s, want 503", resp.Status)
	}
}

func TestHostEndsWithItsCommand(t *testing.T) {
	testkit.CheckNoLeaks(t)
	evs := &events{}
	h, err := StartHost(HostConfig{Command: []string{"sh", "-c", "exit 3"}, OnEvent: evs.add})
	if err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	if h.Err() == nil {
		t.Fatal("exit 3 ended with no error")
	}
	if err := h.Attach(context.Background(), nopConn{}); !errors.Is(err, ErrHostClosed) {
		t.Fatalf("Attach after the end = %v", err)
	}
}

func TestDialRefusesAServerThatIsNotTTYShare(t *testing.T) {
	testkit.CheckNoLeaks(t)
	for _, path := range []string{"", "ws://evil.example/", "//evil.example/ws", "/a b"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(headerTTYWSPath, path)
		}))
		_, err := Dial(context.Background(), srv.URL+"/s/local/")
		srv.Close()
		if !errors.Is(err, ErrNotTTYShare) {
			t.Errorf("websocket path %q: Dial = %v, want ErrNotTTYShare", path, err)
		}
	}
}

type nopConn struct{}

func (nopConn) ReadMessage(ctx context.Context) (Message, error) { <-ctx.Done(); return nil, ctx.Err() }
func (nopConn) WriteMessage(context.Context, Message) error      { return nil }
func (nopConn) Close() error                                     { return nil }

func TestHostLetsOneGuestType(t *testing.T) {
	testkit.CheckNoLeaks(t)
	h, srv, evs := startHost(t, true)
	ctx := context.Background()
	a := dialGuest(t, srv)
	joined := evs.waitFor(t, func(ev Event) bool { _, ok := ev.(GuestJoined); return ok }).(GuestJoined)
	b := dialGuest(t, srv)
	evs.waitFor(t, func(ev Event) bool { j, ok := ev.(GuestJoined); return ok && j.Guest != joined.Guest })

	h.AllowTyping(joined.Guest, true)
	a.WriteMessage(ctx, Write{Data: []byte("allowed\r")})
	readUntil(t, b, "allowed")
	b.WriteMessage(ctx, Write{Data: []byte("other\r")})
	evs.waitFor(t, func(ev Event) bool { d, ok := ev.(InputDropped); return ok && d.Guest != joined.Guest })

	h.AllowTyping(joined.Guest, false) // revoked
	a.WriteMessage(ctx, Write{Data: []byte("revoked\r")})
	evs.waitFor(t, func(ev Event) bool { d, ok := ev.(InputDropped); return ok && d.Guest == joined.Guest })
	h.WriteLocal([]byte("host\r"))
	if out := readUntil(t, b, "host"); strings.Contains(out, "other") || strings.Contains(out, "revoked") {
		t.Fatalf("input that was not allowed reached the PTY: %q", out)
	}
}
