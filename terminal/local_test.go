package terminal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a screen a test reads while it is written.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pipeIn is a keyboard: Cancel ends its reads.
type pipeIn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newPipeIn() *pipeIn {
	r, w := io.Pipe()
	return &pipeIn{r: r, w: w}
}

func (p *pipeIn) Read(b []byte) (int, error) { return p.r.Read(b) }
func (p *pipeIn) Cancel() bool               { p.r.CloseWithError(errors.New("canceled")); return true }

func waitContains(t *testing.T, b *lockedBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(b.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed %q: %q", want, b.String())
		}
	}
}

// What the PTY printed before the first Show is replayed; the host's keys
// reach the PTY; the detach key returns and the screen's modes are
// restored; output after that is not shown until the next Show.
func TestLocalScreenShow(t *testing.T) {
	screen := &LocalScreen{}
	h, err := StartHost(HostConfig{Command: []string{"sh", "-c", "echo before-show; exec cat"}, Local: screen})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	time.Sleep(200 * time.Millisecond) // "before-show" is printed while nobody looks

	out, in := &lockedBuffer{}, newPipeIn()
	done := make(chan error, 1)
	go func() {
		done <- screen.Show(context.Background(), h, GuestConfig{In: in, Out: out,
			Size: func() WinSize { return WinSize{Cols: 90, Rows: 20} }})
	}()
	waitContains(t, out, "before-show")
	in.w.Write([]byte("typed-here\r"))
	waitContains(t, out, "typed-here")
	if s := h.Size(); s != (WinSize{Cols: 90, Rows: 20}) {
		t.Errorf("the PTY is %v, want the view's 90x20", s)
	}
	in.w.Write([]byte{DefaultDetachKey})
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Show = %v after the detach key", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the detach key did not return")
	}
	if !strings.HasSuffix(out.String(), (&ScreenModes{}).Restore()) {
		t.Errorf("the screen's modes were not restored: %q", out.String())
	}
	shown := out.String()
	h.WriteLocal([]byte("after-detach\r"))
	time.Sleep(200 * time.Millisecond)
	if out.String() != shown {
		t.Errorf("output reached the screen after the detach: %q", strings.TrimPrefix(out.String(), shown))
	}
}

// The backlog is bounded: past maxBacklog it is dropped, and the next
// Show relies on the program's redraw alone.
func TestLocalScreenBacklogIsBounded(t *testing.T) {
	s := &LocalScreen{}
	s.Write(bytes.Repeat([]byte("x"), maxBacklog))
	s.Write([]byte("y"))
	if len(s.backlog) != 0 || !s.overflow {
		t.Fatalf("backlog of %d bytes kept past the bound", len(s.backlog))
	}
	s.Write([]byte("z"))
	var out bytes.Buffer
	s.set(&out)
	if out.Len() != 0 {
		t.Errorf("an overflowed backlog was replayed (%d bytes)", out.Len())
	}
	s.restore()
	s.Write([]byte("later"))
	out.Reset()
	s.set(&out)
	if out.String() != "later" {
		t.Errorf("the next backlog replayed %q, want %q", out.String(), "later")
	}
}
