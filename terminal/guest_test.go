package terminal

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// fakeConn is the host's side in memory: from are the host's messages,
// sent the guest's.
type fakeConn struct {
	from   chan Message
	mu     sync.Mutex
	sent   []Message
	closed chan struct{}
	once   sync.Once
}

func newFakeConn() *fakeConn {
	return &fakeConn{from: make(chan Message, 16), closed: make(chan struct{})}
}

func (c *fakeConn) ReadMessage(ctx context.Context) (Message, error) {
	select {
	case m, ok := <-c.from:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-c.closed:
		return nil, io.ErrClosedPipe
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *fakeConn) WriteMessage(_ context.Context, m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, m)
	return nil
}

func (c *fakeConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeConn) typed() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.sent {
		if w, ok := m.(Write); ok {
			b.Write(w.Data)
		}
	}
	return b.String()
}

// keyboard is a CancelReader fed by a channel.
type keyboard struct {
	keys      chan []byte
	cancelled chan struct{}
	once      sync.Once
}

func newKeyboard() *keyboard {
	return &keyboard{keys: make(chan []byte, 4), cancelled: make(chan struct{})}
}

func (k *keyboard) Read(p []byte) (int, error) {
	select {
	case b := <-k.keys:
		return copy(p, b), nil
	case <-k.cancelled:
		return 0, errors.New("cancelled")
	}
}

func (k *keyboard) Cancel() bool { k.once.Do(func() { close(k.cancelled) }); return true }

// runGuest runs a guest in an 80x24 window against a fake host; done
// says how RunGuest ended.
func runGuest() (conn *fakeConn, kb *keyboard, out *lockedBuffer, done chan error) {
	conn, kb, out, done = newFakeConn(), newKeyboard(), &lockedBuffer{}, make(chan error, 1)
	go func() {
		done <- RunGuest(context.Background(), conn, GuestConfig{In: kb, Out: out, Size: func() WinSize { return WinSize{Cols: 80, Rows: 24} }})
	}()
	return conn, kb, out, done
}

func TestGuestShowsTheHostAndRestoresTheScreen(t *testing.T) {
	testkit.CheckNoLeaks(t)
	conn, _, out, done := runGuest()
	conn.from <- WinSize{Cols: 80, Rows: 24}
	conn.from <- Write{Data: []byte("\x1b[?1049h\x1b[?25lfull screen")}
	close(conn.from) // the host ends
	if err := <-done; err != nil {
		t.Fatalf("RunGuest = %v", err)
	}
	got := out.String()
	if !strings.Contains(got, "full screen") || !strings.HasSuffix(got, (&ScreenModes{alt: true}).Restore()) {
		t.Fatalf("the screen got %q", got)
	}
}

func TestGuestTypesAndDetaches(t *testing.T) {
	testkit.CheckNoLeaks(t)
	conn, kb, out, done := runGuest()
	kb.keys <- []byte("ls\r")
	kb.keys <- []byte("x\x1dnot sent")
	select {
	case err := <-done:
		if !errors.Is(err, ErrDetached) {
			t.Fatalf("RunGuest = %v, want ErrDetached", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the detach key did not detach")
	}
	if got := conn.typed(); got != "ls\rx" {
		t.Fatalf("the host got %q", got)
	}
	if !strings.HasSuffix(out.String(), (&ScreenModes{}).Restore()) {
		t.Fatalf("the screen was not restored: %q", out.String())
	}
}

func TestGuestSaysWhenItsWindowIsSmaller(t *testing.T) {
	testkit.CheckNoLeaks(t)
	conn, _, out, done := runGuest()
	conn.from <- WinSize{Cols: 120, Rows: 40}
	conn.from <- Write{Data: []byte("hidden")}
	close(conn.from)
	<-done
	got := out.String()
	if !strings.Contains(got, "smaller than the host's") || !strings.Contains(got, "120x40") || strings.Contains(got, "hidden") {
		t.Fatalf("the screen got %q", got)
	}
}

func TestGuestFiltersTheHostsOutput(t *testing.T) {
	testkit.CheckNoLeaks(t)
	conn, _, out, done := runGuest()
	conn.from <- Write{Data: []byte("a\x1b]52;c;cHdu")}
	conn.from <- Write{Data: []byte("ZWQ=\x07b")}
	close(conn.from)
	<-done
	if got := strings.TrimSuffix(out.String(), (&ScreenModes{}).Restore()); got != "ab" {
		t.Fatalf("the screen got %q", got)
	}
}
