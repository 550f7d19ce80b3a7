package classic

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The direct writer writes what it is given, in odd pieces, whole and in
// order, the tail included; O_DIRECT is on while it writes and off after.
func TestDiskWriterWritesEverything(t *testing.T) {
	for _, size := range []int{0, 100, directAlign, directChunk, 3*directChunk + 12345} {
		want := make([]byte, size)
		rand.Read(want)
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		w := newDiskWriter(f)
		if _, direct := w.(*directWriter); direct && !hasFlag(t, f, unix.O_DIRECT) {
			t.Fatal("O_DIRECT is not on")
		}
		for p := want; len(p) > 0; {
			n := min(len(p), 70001)
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.finish(); err != nil {
			t.Fatal(err)
		}
		if hasFlag(t, f, unix.O_DIRECT) {
			t.Fatal("O_DIRECT is still on")
		}
		f.Close()
		got, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: the file differs (%d bytes)", size, len(got))
		}
	}
}

func hasFlag(t *testing.T, f *os.File, flag int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&flag != 0
}

// Where there is no local disk (tmpfs here), writes go through the page
// cache.
func TestDiskWriterBufferedOffLocalDisks(t *testing.T) {
	f, err := os.CreateTemp("/dev/shm", "gander-diskwriter-*")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("/dev/shm is not tmpfs")
	}
	if w := newDiskWriter(f); w != (bufferedWriter{f}) {
		t.Fatalf("%T on tmpfs, want bufferedWriter", w)
	}
}
