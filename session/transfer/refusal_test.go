package transfer

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gander-pair/gander/internal/testkit"
)

// A refusal's kind reaches a sender that reads it; a peer that does not
// (KindedRefusals off: an older gander) gets the reason alone, in the
// frame it knows.
func TestRefusalKinds(t *testing.T) {
	tests := []struct {
		name     string
		kinded   bool
		kind     RefusalKind
		reason   string
		want     RefusalKind
		wantText string
	}{
		{"by the user", true, RefusalByUser, "", RefusalByUser, "the peer refused it"},
		{"policy", true, RefusalPolicy, "started without --accept-files", RefusalPolicy,
			"the peer does not accept files (started without --accept-files)"},
		{"limit", true, RefusalLimit, "too large: 2 GB", RefusalLimit, "transfer: refused by peer: too large: 2 GB"},
		{"to an older gander", false, RefusalByUser, "refused here", RefusalUnspecified, "transfer: refused by peer: refused here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			src := filepath.Join(t.TempDir(), "notes.txt")
			writeFile(t, src, 10)
			dir := t.TempDir()
			r := transfer(t, src, dir, transferOpts{answer: func(in *Incoming, _ string) (string, error) {
				in.KindedRefusals = tt.kinded
				return "", in.RefuseWith(tt.kind, tt.reason)
			}})
			var refused *RefusedError
			if !errors.As(r.sendErr, &refused) || refused.Kind != tt.want || refused.Reason != tt.reason {
				t.Fatalf("send: %#v, want a refusal of kind %v", r.sendErr, tt.want)
			}
			if got := refused.Error(); got != tt.wantText {
				t.Errorf("error %q, want %q", got, tt.wantText)
			}
			assertOnly(t, dir)
		})
	}
}

// A folder that cannot be written to fails Accept before the peer hears
// anything: the same offer can then be accepted into another folder.
func TestAcceptRetriesAnotherFolder(t *testing.T) {
	testkit.CheckNoLeaks(t)
	src := filepath.Join(t.TempDir(), "notes.txt")
	writeFile(t, src, 100_000)
	dir := t.TempDir()
	missing := filepath.Join(dir, "incoming")
	notDir := filepath.Join(dir, "file")
	writeFile(t, notDir, 1)
	r := transfer(t, src, dir, transferOpts{answer: func(in *Incoming, _ string) (string, error) {
		for _, bad := range []string{missing, notDir} {
			_, err := in.Accept(t.Context(), bad, nil)
			var folder *FolderError
			if !errors.As(err, &folder) || folder.Dir != bad {
				t.Fatalf("accept into %s: %v, want a *FolderError", bad, err)
			}
			if folder.Missing() != (bad == missing) {
				t.Errorf("%v: Missing() = %v", err, folder.Missing())
			}
		}
		if err := os.Mkdir(missing, 0o755); err != nil {
			t.Fatal(err)
		}
		return in.Accept(t.Context(), missing, nil)
	}})
	if r.recvErr != nil || r.sendErr != nil {
		t.Fatalf("receive: %v, send: %v", r.recvErr, r.sendErr)
	}
	r.wantSaved(t, filepath.Join(missing, "notes.txt"))
	sameFile(t, src, r.saved)
}

func TestFolderErrorText(t *testing.T) {
	_, err := os.OpenRoot("/nonexistent/incoming")
	e := &FolderError{Dir: "/nonexistent/incoming", Err: err}
	if got, want := e.Error(), "cannot save into /nonexistent/incoming: no such folder"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// A receiver's full disk reaches the sender as the peer not saving, not
// as a file system error that reads like the sender's own file.
func TestDiskFullTellsTheSenderItIsThePeers(t *testing.T) {
	testkit.CheckNoLeaks(t)
	src := filepath.Join(t.TempDir(), "notes.txt")
	writeFile(t, src, 1<<20)
	dir := t.TempDir()
	r := transfer(t, src, dir, transferOpts{answer: func(in *Incoming, dir string) (string, error) {
		in.create = func(root *os.Root, name string) (io.WriteCloser, error) {
			f, err := createFile(root, name)
			if err != nil {
				return nil, err
			}
			return &failingFile{File: f.(*os.File), limit: 100 << 10}, nil
		}
		return in.Accept(t.Context(), dir, nil)
	}})
	var canceled *CanceledError
	if !errors.As(r.sendErr, &canceled) || canceled.Reason != CouldNotSave+"no space left on device" {
		t.Fatalf("send: %v, want the peer's %q", r.sendErr, CouldNotSave)
	}
}
