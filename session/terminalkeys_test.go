package session

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/gander-pair/gander/forwards"
)

// chunkKeys hands out its chunks one Read at a time, then EOF.
type chunkKeys struct{ chunks []string }

func (c *chunkKeys) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}
func (c *chunkKeys) Cancel() bool { return true }

func TestKeyEscapes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chunks   []string
		readOnly bool
		want     string
		asks     int
	}{
		{"first in the view", []string{"~k"}, true, "", 1},
		{"after Enter", []string{"ls\r~k"}, true, "ls\r", 1},
		{"after a newline", []string{"ls\n~k"}, true, "ls\n", 1},
		{"split across reads", []string{"ls\r~", "k", "x"}, true, "ls\rx", 1},
		{"twice on one line's start", []string{"~k~k"}, true, "", 2},
		{"~~ types one ~", []string{"~~k"}, true, "~k", 0},
		{"~ then another key", []string{"~x"}, true, "~x", 0},
		{"~ then Enter", []string{"~\r~k"}, true, "~\r", 1},
		{"~ mid-line is a key", []string{"cd ~k"}, true, "cd ~k", 0},
		{"the detach key after a held ~", []string{"~\x1d"}, true, "~\x1d", 0},
		{"a held ~ at the end stays held", []string{"a\r~"}, true, "a\r", 0},
		{"nothing taken while the guest may type", []string{"~k\r~~\r~x"}, false, "~k\r~~\r~x", 0},
		{"a big read", []string{string(bytes.Repeat([]byte("a\r~k"), 3000))}, true, string(bytes.Repeat([]byte("a\r"), 3000)), 3000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asks := 0
			k := newKeyEscapes(&chunkKeys{chunks: append([]string(nil), tc.chunks...)},
				func() bool { return tc.readOnly }, func() { asks++ })
			got, err := io.ReadAll(k)
			if err != nil || string(got) != tc.want || asks != tc.asks {
				t.Errorf("got %q (%v), %d asks; want %q, %d asks", got, err, asks, tc.want, tc.asks)
			}
		})
	}
}

// Small reads get all of a filtered read, a piece at a time, and the
// keyboard's error after it.
func TestKeyEscapesSmallReads(t *testing.T) {
	k := newKeyEscapes(&chunkKeys{chunks: []string{"abc\r~~def"}}, func() bool { return true }, func() {})
	var got []byte
	p := make([]byte, 2)
	for {
		n, err := k.Read(p)
		got = append(got, p[:n]...)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	if string(got) != "abc\r~def" {
		t.Errorf("got %q", got)
	}
}

// Whatever the keys, the filter hands out at most one byte more than it
// was given (a held ~), and everything while the guest may type.
func FuzzKeyEscapes(f *testing.F) {
	f.Add([]byte("ls\r~k~~x\r~"), true)
	f.Add([]byte("~\x1d"), false)
	f.Fuzz(func(t *testing.T, keys []byte, readOnly bool) {
		k := &keyEscapes{ask: func() {}}
		out := k.filter(nil, keys, readOnly)
		if len(out) > len(keys)+1 {
			t.Fatalf("%d bytes out of %d", len(out), len(keys))
		}
		if !readOnly && !bytes.Equal(out, keys) {
			t.Fatalf("took keys while the guest may type: %q → %q", keys, out)
		}
	})
}

// In a guest's view, AskKeyboardEscape asks the host for the keyboard
// (without leaving the view); once allowed the same keys are typed.
func TestShareAskKeyboardFromTheView(t *testing.T) {
	dir := t.TempDir()
	host, guest, hostCmds, guestCmds := twoSessions(t, Config{})
	hostCmds <- StartShare{Command: []string{"/bin/sh"}, Size: WinSize{Cols: 80, Rows: 24}}
	waitEvent[ShareOffered](t, host)
	waitEvent[ShareOffered](t, guest)
	keys, out := newPipeKeys(), &screen{}
	view, done := testView(keys, out)
	guestCmds <- WatchShare{View: view}
	waitEvent[ShareGuestJoined](t, host)

	keys.typeKeys(t, "~k")
	ask := waitEvent[ShareKeyboardRequested](t, host)
	hostCmds <- Answer{ID: ask.ID, Decision: forwards.AllowOnce}
	if typing := waitEvent[ShareTyping](t, guest); !typing.Allowed {
		t.Fatalf("guest's ShareTyping = %+v", typing)
	}
	// Allowed: "~k" is no escape now, the shell gets it (a file named so).
	// (the guest's state changed before the event: the next Read sees it)
	keys.typeKeys(t, "cd "+dir+" && touch x\r~k\r")
	waitFile(t, filepath.Join(dir, "x"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if bytes.Contains([]byte(out.String()), []byte("~k: not found")) || bytes.Contains([]byte(out.String()), []byte("~k: command not found")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the allowed guest's ~k did not reach the shell: %q", out.String())
		}
	}
	guestCmds <- DetachShare{}
	if err := waitDone(t, done); err != nil {
		t.Errorf("the view ended with %v", err)
	}
}
