package classic

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// fakeMailbox is one side of a mailbox carried by channels, with a fixed
// key: enough to run Send's and Receive's protocol in one process.
type fakeMailbox struct {
	in, out chan []byte
}

func mailboxPair() (*fakeMailbox, *fakeMailbox) {
	a, b := make(chan []byte, 16), make(chan []byte, 16)
	return &fakeMailbox{in: a, out: b}, &fakeMailbox{in: b, out: a}
}

func (m *fakeMailbox) Send(ctx context.Context, msg []byte) error {
	select {
	case m.out <- append([]byte(nil), msg...):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *fakeMailbox) Receive(ctx context.Context) ([]byte, error) {
	select {
	case msg := <-m.in:
		return msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *fakeMailbox) DeriveKey(purpose string, n int) ([]byte, error) {
	return bytes.Repeat([]byte{byte(len(purpose))}, n), nil
}

func (m *fakeMailbox) Verifier(context.Context) ([]byte, error) { return []byte{1, 2, 3}, nil }

type outcome struct {
	sendErr, recvErr       error
	sendStderr, recvStderr string
}

// exchange runs sendOn(item) against receiveOn(cfg) in one process, over
// loopback Transit.
func exchange(t *testing.T, item what, cfg Config) outcome {
	t.Helper()
	testkit.CheckNoLeaks(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sm, rm := mailboxPair()
	var o outcome
	var sendOut, recvOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- sendOn(ctx, Config{HideProgress: true}, sm, item, bufio.NewReader(strings.NewReader("")), &sendOut)
	}()
	cfg.HideProgress = true
	o.recvErr = receiveOn(ctx, cfg, rm, bufio.NewReader(strings.NewReader("")), io.Discard, &recvOut)
	select {
	case o.sendErr = <-done:
	case <-time.After(5 * time.Second):
		cancel() // the sender waits for something that will not come
		o.sendErr = <-done
	}
	o.sendStderr, o.recvStderr = sendOut.String(), recvOut.String()
	return o
}

func fileItem(t *testing.T, content []byte) what {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sent.bin")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	item, err := prepare(path)
	if err != nil {
		t.Fatal(err)
	}
	return item
}

func TestSendReceiveFile(t *testing.T) {
	content := bytes.Repeat([]byte("gander "), 100_000)
	dir := t.TempDir()
	o := exchange(t, fileItem(t, content), Config{Dir: dir, AcceptFile: true})
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatalf("send %v, receive %v\n%s\n%s", o.sendErr, o.recvErr, o.sendStderr, o.recvStderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, "sent.bin"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("received %d bytes (%v), want %d", len(got), err, len(content))
	}
	assertOnly(t, dir, "sent.bin")
}

// A sender that sends more than it offered: refused, nothing kept.
func TestReceiveRefusesMoreThanOffered(t *testing.T) {
	item := fileItem(t, bytes.Repeat([]byte{1}, 1000))
	item.offer.File.Filesize = 10 // the offer lies; sendData sends item.size
	dir := t.TempDir()
	o := exchange(t, item, Config{Dir: dir, AcceptFile: true})
	if !errors.Is(o.recvErr, ErrTooManyBytes) {
		t.Fatalf("receive: %v, want ErrTooManyBytes", o.recvErr)
	}
	if o.sendErr == nil {
		t.Fatal("the lying sender succeeded")
	}
	assertOnly(t, dir)
}

func TestReceiveRefusesWithoutRoom(t *testing.T) {
	dir := t.TempDir()
	noRoom := func(string) (int64, error) { return 100, nil }
	o := exchange(t, fileItem(t, make([]byte, 1000)), Config{Dir: dir, AcceptFile: true, FreeSpace: noRoom})
	if o.recvErr == nil || !strings.Contains(o.recvErr.Error(), "not enough free space") {
		t.Fatalf("receive: %v", o.recvErr)
	}
	var remote *RemoteError
	if o.sendErr == nil || !strings.Contains(o.sendErr.Error(), "lacks disk space (1.0 kB needed, 100 B free)") {
		t.Fatalf("the sender was not told why: %v (%v)", o.sendErr, errors.As(o.sendErr, &remote))
	}
	assertOnly(t, dir)
}

func TestReceiveNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sent.bin"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := exchange(t, fileItem(t, []byte("theirs")), Config{Dir: dir, AcceptFile: true})
	if o.recvErr == nil || o.sendErr == nil || !strings.Contains(o.sendErr.Error(), "transfer rejected") {
		t.Fatalf("send %v, receive %v", o.sendErr, o.recvErr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "sent.bin")); string(got) != "mine" {
		t.Fatalf("the existing file now holds %q", got)
	}
	assertOnly(t, dir, "sent.bin")
}

// Without --accept-file and with no answer on stdin, the offer is refused.
func TestReceiveAsks(t *testing.T) {
	dir := t.TempDir()
	o := exchange(t, fileItem(t, []byte("x")), Config{Dir: dir})
	if !errors.Is(o.recvErr, ErrRejected) || !strings.Contains(o.recvStderr, "ok? (Y/n): ") {
		t.Fatalf("receive: %v\n%s", o.recvErr, o.recvStderr)
	}
	assertOnly(t, dir)
}

func TestSafeName(t *testing.T) {
	for _, tc := range []struct {
		offered, want string
		ok            bool
	}{
		{"report.pdf", "report.pdf", true},
		{"../../.ssh/authorized_keys", "authorized_keys", true},
		{"/etc/passwd", "passwd", true},
		{`..\..\evil.exe`, "evil.exe", true},
		{"dir/", "dir", true},
		{"résumé ✓", "résumé ✓", true},
		{"..", "", false},
		{".", "", false},
		{"", "", false},
		{"/", "", false},
		{"a\x00b", "", false},
		{"\xff\xfe", "", false},
		{strings.Repeat("a", MaxNameLength+1), "", false},
	} {
		got, err := safeName(tc.offered)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("safeName(%q) = %q, %v; want %q, ok %v", tc.offered, got, err, tc.want, tc.ok)
		}
	}
}

func TestOfferChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"negative file", (&fileOffer{Filename: "a", Filesize: -1}).check()},
		{"huge file", (&fileOffer{Filename: "a", Filesize: MaxOfferSize + 1}).check()},
		{"unknown mode", (&directoryOffer{Mode: "tar", Dirname: "d"}).check()},
		{"too many files", (&directoryOffer{Mode: "zipfile/deflated", Dirname: "d", Numfiles: MaxDirectoryFiles + 1}).check()},
		{"negative bytes", (&directoryOffer{Mode: "zipfile/deflated", Dirname: "d", Numbytes: -5}).check()},
	} {
		var bad *BadOfferError
		if !errors.As(tc.err, &bad) {
			t.Errorf("%s: %v, want a BadOfferError", tc.name, tc.err)
		}
	}
	if err := (&directoryOffer{Mode: "zipfile/deflated", Dirname: "d", Zipsize: 10, Numbytes: 5, Numfiles: 1}).check(); err != nil {
		t.Errorf("a good offer: %v", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"offer": {"file": {"filename": "a", "filesize": 3}}}`))
	f.Add([]byte(`{"offer": {"directory": {"mode": "zipfile/deflated", "dirname": "d", "zipsize": 1, "numbytes": 1, "numfiles": 1}}}`))
	f.Add([]byte(`{"transit": {"abilities-v1": [{"type": "direct-tcp-v1"}], "hints-v1": [{"type": "direct-tcp-v1", "hostname": "1.2.3.4", "port": 5}]}}`))
	f.Add([]byte(`{"error": "transfer rejected"}`))
	f.Add([]byte(`{"answer": {"file_ack": "ok"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			return
		}
		if m.Offer != nil && m.Offer.File != nil && m.Offer.File.check() == nil {
			if name, err := safeName(m.Offer.File.Filename); err != nil || strings.ContainsAny(name, "/\x00") || name == ".." {
				t.Fatalf("accepted name %q", name)
			}
		}
		if m.Offer != nil && m.Offer.Directory != nil {
			m.Offer.Directory.check()
		}
	})
}

// assertOnly fails unless dir holds exactly names (no temporary files).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, "/") != strings.Join(names, "/") {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}
