package plain

import (
	"bytes"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recordingWriter remembers each Write it is given.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(bytes.Clone(p)))
	return len(p), nil
}

func (r *recordingWriter) taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestBatchedWriterJoinsLinesWithinTheDelay(t *testing.T) {
	w := &recordingWriter{}
	b := newBatchedWriter(w, 50*time.Millisecond)
	b.Write([]byte("one\n"))
	b.Write([]byte("two\n"))
	if got := w.taken(); len(got) != 0 {
		t.Fatalf("written at once: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(w.taken()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := w.taken(); len(got) != 1 || got[0] != "one\ntwo\n" {
		t.Fatalf("writes = %q, want the two lines in one", got)
	}
	b.Write([]byte("three\n"))
	b.Flush()
	if got := w.taken(); len(got) != 2 || got[1] != "three\n" {
		t.Fatalf("after Flush, writes = %q", got)
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, syscall.ENOSPC }

// Output that cannot be written (a full disk) is reported once, so that
// main ends the session, and nothing more is buffered.
func TestBatchedWriterReportsTheFirstWriteError(t *testing.T) {
	b := newBatchedWriter(failingWriter{}, time.Hour)
	failed := make(chan error, 2)
	b.failed = func(err error) { failed <- err }
	b.Write([]byte("one\n"))
	if err := b.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush = %v, want ENOSPC", err)
	}
	if _, err := b.Write([]byte("two\n")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write after the failure = %v, want ENOSPC", err)
	}
	b.Flush()
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("failed(%v)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("failed was not called")
	}
	select {
	case err := <-failed:
		t.Errorf("failed called twice (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	if len(b.buf) != 0 {
		t.Errorf("%d bytes still buffered", len(b.buf))
	}
}
