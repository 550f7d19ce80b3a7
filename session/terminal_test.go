package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/forwards"
)

// pipeKeys is a keyboard a test types into; Cancel ends its reads.
type pipeKeys struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newPipeKeys() *pipeKeys {
	r, w := io.Pipe()
	return &pipeKeys{r: r, w: w}
}

func (k *pipeKeys) Read(p []byte) (int, error) { return k.r.Read(p) }
func (k *pipeKeys) Cancel() bool               { k.r.CloseWithError(errors.New("canceled")); return true }
func (k *pipeKeys) typeKeys(t *testing.T, s string) {
	t.Helper()
	if _, err := k.w.Write([]byte(s)); err != nil {
		t.Fatalf("typing %q: %v", s, err)
	}
}

// screen is a view's output, safe to read while it is written.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func testView(keys *pipeKeys, out io.Writer) (TerminalView, <-chan error) {
	done := make(chan error, 1)
	return TerminalView{In: keys, Out: out, Size: func() WinSize { return WinSize{Cols: 100, Rows: 30} },
		Resized: make(chan struct{}), Done: done}, done
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s was not made on the host", path)
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the view did not end")
		return nil
	}
}

// The whole flow between two sessions: the host shares read-only, the
// guest's keys are dropped on the host, the guest asks for the keyboard,
// the host allows, the guest's command runs on the host, the host
// revokes and the guest's keys are dropped again; the guest detaches and
// the host stops the share.
func TestShareKeyboardFlow(t *testing.T) {
	dir := t.TempDir()
	host, guest, hostCmds, guestCmds := twoSessions(t, Config{})
	hostCmds <- StartShare{Command: []string{"/bin/sh"}, Size: WinSize{Cols: 80, Rows: 24}}
	if o := waitEvent[ShareOffered](t, host); !o.Outgoing {
		t.Fatalf("host's ShareOffered = %+v", o)
	}
	if o := waitEvent[ShareOffered](t, guest); o.Outgoing || o.Command != "/bin/sh" {
		t.Fatalf("guest's ShareOffered = %+v", o)
	}
	keys, out := newPipeKeys(), &screen{}
	view, done := testView(keys, out)
	guestCmds <- WatchShare{View: view}
	waitEvent[ShareGuestJoined](t, host)

	keys.typeKeys(t, "touch "+filepath.Join(dir, "read-only")+"\r")
	if d := waitEvent[ShareInputDropped](t, host); d.Bytes == 0 {
		t.Errorf("ShareInputDropped = %+v", d)
	}

	guestCmds <- AskKeyboard{}
	ask := waitEvent[ShareKeyboardRequested](t, host)
	hostCmds <- Answer{ID: ask.ID, Decision: forwards.AllowOnce}
	if typing := waitEvent[ShareTyping](t, guest); !typing.Allowed || typing.Outgoing {
		t.Fatalf("guest's ShareTyping = %+v", typing)
	}
	if typing := waitEvent[ShareTyping](t, host); !typing.Allowed || !typing.Outgoing {
		t.Fatalf("host's ShareTyping = %+v", typing)
	}
	keys.typeKeys(t, "touch "+filepath.Join(dir, "allowed")+"; echo made-it\r")
	waitFile(t, filepath.Join(dir, "allowed"))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "made-it"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest's screen never showed the command's output: %q", out.String())
		}
	}

	hostCmds <- RevokeTyping{}
	if typing := waitEvents[ShareTyping](t, guest, 2)[1]; typing.Allowed {
		t.Fatalf("guest's second ShareTyping = %+v", typing)
	}
	time.Sleep(inputDroppedInterval) // so the next drop is reported
	keys.typeKeys(t, "touch "+filepath.Join(dir, "revoked")+"\r")
	waitEvents[ShareInputDropped](t, host, 2)
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, "read-only")); err == nil {
		t.Error("the guest's keys ran while read-only")
	}
	if _, err := os.Stat(filepath.Join(dir, "revoked")); err == nil {
		t.Error("the guest's keys ran after the host revoked typing")
	}

	guestCmds <- DetachShare{}
	if err := waitDone(t, done); err != nil {
		t.Errorf("the detached view ended with %v", err)
	}
	waitEvent[ShareGuestLeft](t, host)

	// Watch again, then the host stops: the view ends with the share.
	keys2 := newPipeKeys()
	view2, done2 := testView(keys2, &screen{})
	guestCmds <- WatchShare{View: view2}
	waitEvents[ShareGuestJoined](t, host, 2)
	hostCmds <- StopShare{}
	if e := waitEvent[ShareEnded](t, guest); e.Outgoing || e.Err != nil {
		t.Errorf("guest's ShareEnded = %+v", e)
	}
	if e := waitEvent[ShareEnded](t, host); !e.Outgoing || e.Err != nil {
		t.Errorf("host's ShareEnded = %+v", e)
	}
	if err := waitDone(t, done2); err != nil {
		t.Errorf("the view of an ended share ended with %v", err)
	}
}

// The host's view: its keys go to the PTY unfiltered and always; the
// detach key returns.
func TestShowShareTypesIntoThePTY(t *testing.T) {
	dir := t.TempDir()
	host, _, hostCmds, _ := twoSessions(t, Config{})
	hostCmds <- StartShare{Command: []string{"/bin/sh"}}
	waitEvent[ShareOffered](t, host)
	keys, out := newPipeKeys(), &screen{}
	view, done := testView(keys, out)
	hostCmds <- ShowShare{View: view}
	keys.typeKeys(t, "touch "+filepath.Join(dir, "host")+"\r")
	waitFile(t, filepath.Join(dir, "host"))
	keys.typeKeys(t, "\x1d")
	if err := waitDone(t, done); err != nil {
		t.Errorf("ShowShare ended with %v", err)
	}
	// A second view while one runs is refused.
	hostCmds <- StartShare{}
	if f := waitEvent[CommandFailed](t, host); !errors.Is(f.Err, ErrShareRunning) {
		t.Errorf("a second StartShare failed with %v", f.Err)
	}
}

// Toward a gander without terminal-v1 the commands fail saying why, and
// nothing is opened.
func TestShareWithAPeerWithoutTerminal(t *testing.T) {
	r, _, cmds := oneSessionAndAFakePeerWith(t, Config{},
		forwards.AppVersions(FeatureForwards, FeatureFiles))
	cmds <- StartShare{}
	f := waitEvent[CommandFailed](t, r)
	var lacks *PeerLacksError
	if !errors.As(f.Err, &lacks) || lacks.Feature != FeatureTerminal {
		t.Fatalf("StartShare failed with %v, want the peer lacking %s", f.Err, FeatureTerminal)
	}
	done := make(chan error, 1)
	cmds <- WatchShare{View: TerminalView{Done: done}}
	if err := waitDone(t, done); !errors.As(err, &lacks) {
		t.Errorf("WatchShare ended with %v", err)
	}
}

// A hostile host: a share without an offer, an oversized control
// message, a second share while one runs.
func TestHostileShareControl(t *testing.T) {
	r, conn := oneSessionAndAFakePeer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	big, err := conn.Open(ctx, terminalShareProto)
	if err != nil {
		t.Fatal(err)
	}
	big.Write([]byte{0, 1, 0, 0}) // 64 KiB announced
	if _, err := io.ReadAll(big); err != nil && !errors.Is(err, io.EOF) {
		t.Logf("the oversized share ended with %v", err)
	}
	if has[ShareOffered](r) {
		t.Fatal("an oversized control message made a share")
	}

	first, err := conn.Open(ctx, terminalShareProto)
	if err != nil {
		t.Fatal(err)
	}
	frame, _ := encodeControl(controlMsg{Kind: kindOffer, Command: "vim\x1b]52;c;aGk=\x07"})
	first.Write(frame)
	if o := waitEvent[ShareOffered](t, r); strings.ContainsRune(o.Command, 0x1b) {
		t.Errorf("the offer's command reached the frontend unsanitised: %q", o.Command)
	}
	second, err := conn.Open(ctx, terminalShareProto)
	if err != nil {
		t.Fatal(err)
	}
	second.Write(frame)
	second.Read(make([]byte, 1)) // closed by the session
	if n := count[ShareOffered](r); n != 1 {
		t.Errorf("%d ShareOffered, want 1 (one share at a time)", n)
	}
	first.Close()
	waitEvent[ShareEnded](t, r)
}

func TestReadControl(t *testing.T) {
	good, _ := encodeControl(controlMsg{Kind: kindTyping, Allowed: true})
	for _, tc := range []struct {
		name string
		in   []byte
		want controlMsg
		err  error
	}{
		{"typing", good, controlMsg{Kind: kindTyping, Allowed: true}, nil},
		{"empty", nil, controlMsg{}, io.EOF},
		{"short head", []byte{0, 0}, controlMsg{}, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 0, 0, 9, '{'}, controlMsg{}, io.ErrUnexpectedEOF},
		{"too big", []byte{0, 0, 0x10, 1}, controlMsg{}, errBadControl},
		{"not json", []byte{0, 0, 0, 1, 'x'}, controlMsg{}, errBadControl},
		{"unknown kind", append([]byte{0, 0, 0, 13}, `{"kind":"zz"}`...), controlMsg{Kind: "zz"}, nil},
	} {
		m, err := readControl(bytes.NewReader(tc.in))
		if !errors.Is(err, tc.err) || m != tc.want {
			t.Errorf("%s: readControl = %+v, %v; want %+v, %v", tc.name, m, err, tc.want, tc.err)
		}
	}
	if _, err := encodeControl(controlMsg{Kind: strings.Repeat("x", maxControlFrame)}); !errors.Is(err, errBadControl) {
		t.Errorf("encoding an oversized message: %v", err)
	}
}

func FuzzReadControl(f *testing.F) {
	good, _ := encodeControl(controlMsg{Kind: kindOffer, Command: "bash"})
	f.Add(good)
	f.Add([]byte{0, 0, 0x10, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			if _, err := readControl(r); err != nil {
				return
			}
		}
	})
}
