package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

func TestSendFile(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"one chunk", maxData},
		{"chunk and a byte", maxData + 1},
		{"64 MiB", 64 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			src := filepath.Join(t.TempDir(), "data.bin")
			writeFile(t, src, tt.size)
			dir := t.TempDir()
			r := transfer(t, src, dir, transferOpts{})
			r.wantSaved(t, filepath.Join(dir, "data.bin"))
			sameFile(t, src, r.saved)
			assertOnly(t, dir, "data.bin")

			last := r.progress[len(r.progress)-1]
			if want := (Progress{Size: int64(tt.size), Done: int64(tt.size), Files: 1, FilesDone: 1}); last != want {
				t.Fatalf("last progress %+v, want %+v", last, want)
			}
			if max := tt.size/(16<<10) + 2; len(r.progress) > max {
				t.Fatalf("%d progress calls for %d bytes", len(r.progress), tt.size)
			}
		})
	}
}

// makeTree builds a directory with nested, empty and unusual content.
func makeTree(t *testing.T) string {
	src := filepath.Join(t.TempDir(), "project")
	writeFile(t, filepath.Join(src, "README"), 100)
	writeFile(t, filepath.Join(src, "empty.txt"), 0)
	writeFile(t, filepath.Join(src, "a", "b", "c", "deep.bin"), 3*maxData+17)
	writeFile(t, filepath.Join(src, "a", "sibling"), 5)
	writeFile(t, filepath.Join(src, "name with spaces é.txt"), 10)
	for _, d := range []string{"empty dir", "a/b/empty"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Links are not sent.
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestSendDirectory(t *testing.T) {
	testkit.CheckNoLeaks(t)
	src := makeTree(t)
	dir := t.TempDir()
	r := transfer(t, src, dir, transferOpts{})
	r.wantSaved(t, "")
	want := slices.DeleteFunc(tree(t, src), func(s string) bool { return strings.HasPrefix(s, "link ") })
	if got := tree(t, r.saved); !slices.Equal(got, want) {
		t.Fatalf("received\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	assertOnly(t, dir, "project")
	last := r.progress[len(r.progress)-1]
	if last.FilesDone != 5 || last.Files != 5 || last.Done != last.Size {
		t.Fatalf("last progress %+v", last)
	}
}

func TestSendManySmallFiles(t *testing.T) {
	testkit.CheckNoLeaks(t)
	src := filepath.Join(t.TempDir(), "many")
	for i := range 10000 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%05d", i)), i%300)
	}
	dir := t.TempDir()
	start := time.Now()
	r := transfer(t, src, dir, transferOpts{})
	r.wantSaved(t, "")
	t.Logf("10,000 files in %v", time.Since(start))
	if got, want := tree(t, r.saved), tree(t, src); !slices.Equal(got, want) {
		t.Fatalf("trees differ: %d entries received, %d sent", len(got), len(want))
	}
}

func TestExistingNamesAreKept(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srcDir := t.TempDir()
	src := filepath.Join(srcDir, "notes.txt")
	writeFile(t, src, 1000)
	dir := t.TempDir()
	for _, name := range []string{"notes.txt", "notes (1).txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A link in the target is neither followed nor replaced.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "notes (2).txt")); err != nil {
		t.Fatal(err)
	}
	r := transfer(t, src, dir, transferOpts{})
	r.wantSaved(t, filepath.Join(dir, "notes (3).txt"))
	sameFile(t, src, r.saved)
	for _, name := range []string{"notes.txt", "notes (1).txt"} {
		if data, _ := os.ReadFile(filepath.Join(dir, name)); string(data) != "mine" {
			t.Fatalf("%s was overwritten", name)
		}
	}
	assertOnly(t, outside)

	// The same for a directory.
	srcTree := makeTree(t)
	if err := os.Mkdir(filepath.Join(dir, "project"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = transfer(t, srcTree, dir, transferOpts{})
	r.wantSaved(t, filepath.Join(dir, "project (1)"))
	assertOnly(t, filepath.Join(dir, "project"))
}

func TestRefuse(t *testing.T) {
	testkit.CheckNoLeaks(t)
	src := filepath.Join(t.TempDir(), "secret")
	writeFile(t, src, 1000)
	dir := t.TempDir()
	r := transfer(t, src, dir, transferOpts{answer: func(in *Incoming, _ string) (string, error) {
		if in.Offer != (Offer{Name: "secret", Kind: KindFile, Size: 1000, Files: 1}) {
			t.Errorf("offer %+v", in.Offer)
		}
		return "", in.Refuse("not now")
	}})
	if r.recvErr != nil {
		t.Fatal(r.recvErr)
	}
	var refused *RefusedError
	if !errors.As(r.sendErr, &refused) || refused.Reason != "not now" {
		t.Fatalf("send: %v, want refusal", r.sendErr)
	}
	assertOnly(t, dir)
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name      string
		bySender  bool
		whenBytes int64 // cancel once this much has arrived
	}{
		{"sender, mid-way", true, 4 << 20},
		{"receiver, mid-way", false, 4 << 20},
		{"receiver, first chunk", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			src := filepath.Join(t.TempDir(), "big")
			writeFile(t, src, 32<<20)
			parent := t.TempDir()
			dir := filepath.Join(parent, "in")
			os.Mkdir(dir, 0o755)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := transferOpts{}
			hook := func(p Progress) {
				if p.Done >= tt.whenBytes {
					cancel()
				}
			}
			if tt.bySender {
				o.sendCtx, o.sendProgress = ctx, hook
			} else {
				o.recvCtx, o.recvProgress = ctx, hook
			}
			r := transfer(t, src, dir, o)
			local, remote := r.sendErr, r.recvErr
			if !tt.bySender {
				local, remote = remote, local
			}
			var ours, theirs *CanceledError
			if !errors.As(local, &ours) || ours.ByPeer || !errors.Is(local, context.Canceled) {
				t.Errorf("canceling side: %v", local)
			}
			if !errors.As(remote, &theirs) || !theirs.ByPeer || theirs.Reason != "canceled" {
				t.Errorf("other side: %v", remote)
			}
			assertOnly(t, parent, "in")
			assertOnly(t, dir)
		})
	}
}

func TestWithdrawBeforeAnswer(t *testing.T) {
	testkit.CheckNoLeaks(t)
	src := filepath.Join(t.TempDir(), "f")
	writeFile(t, src, 10)
	dir := t.TempDir()
	a, b := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- Send(ctx, a, src, nil) }()
	in, err := ReadOffer(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-in.Withdrawn():
	case <-time.After(5 * time.Second):
		t.Fatal("offer not withdrawn")
	}
	_, err = in.Accept(context.Background(), dir, nil)
	var canceled *CanceledError
	if !errors.As(err, &canceled) || !canceled.ByPeer {
		t.Fatalf("Accept: %v", err)
	}
	if err := <-sent; !errors.Is(err, context.Canceled) {
		t.Fatalf("Send: %v", err)
	}
	assertOnly(t, dir)
}

// failingFile is a file on a disk that fills up after limit bytes.
type failingFile struct {
	*os.File
	limit int64
}

func (f *failingFile) Write(p []byte) (int, error) {
	if int64(len(p)) > f.limit {
		n, _ := f.File.Write(p[:f.limit])
		f.limit = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.limit -= int64(len(p))
	return f.File.Write(p)
}

func TestDiskFull(t *testing.T) {
	for _, tree := range []bool{false, true} {
		t.Run(fmt.Sprint("tree=", tree), func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			src := filepath.Join(t.TempDir(), "big")
			writeFile(t, src, 8<<20)
			if tree {
				src = makeTree(t)
			}
			parent := t.TempDir()
			dir := filepath.Join(parent, "in")
			os.Mkdir(dir, 0o755)
			r := transfer(t, src, dir, transferOpts{answer: func(in *Incoming, dir string) (string, error) {
				in.create = func(root *os.Root, name string) (io.WriteCloser, error) {
					f, err := createFile(root, name)
					if err != nil {
						return nil, err
					}
					return &failingFile{File: f.(*os.File), limit: 100 << 10}, nil
				}
				return in.Accept(context.Background(), dir, nil)
			}})
			if !errors.Is(r.recvErr, syscall.ENOSPC) {
				t.Errorf("receive: %v, want ENOSPC", r.recvErr)
			}
			var canceled *CanceledError
			if !errors.As(r.sendErr, &canceled) || !canceled.ByPeer || !strings.Contains(canceled.Reason, "no space left") {
				t.Errorf("send: %v", r.sendErr)
			}
			if strings.Contains(fmt.Sprint(r.sendErr), parent) {
				t.Errorf("the peer learnt our path: %v", r.sendErr)
			}
			assertOnly(t, parent, "in")
			assertOnly(t, dir)
		})
	}
}

func TestSendUnsafeLocalName(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	writeFile(t, filepath.Join(src, "a:b"), 1)
	a, _ := tcpPair(t)
	var unsafe *UnsafeNameError
	if err := Send(context.Background(), a, src, nil); !errors.As(err, &unsafe) {
		t.Fatalf("Send: %v, want *UnsafeNameError", err)
	}
}
