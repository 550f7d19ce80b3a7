package main

import (
	"bytes"
	"sync"
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
