package classic

import (
	"archive/zip"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zipEntry is one entry of a hand-made zip.
type zipEntry struct {
	name string
	data []byte
	mode fs.FileMode // 0: a regular file, 0644
}

func makeZip(t *testing.T, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// directoryItem offers z as directory "incoming", with the counts given.
func directoryItem(z []byte, numfiles int, numbytes int64) what {
	return what{
		name: "incoming", size: int64(len(z)),
		offer: offerMessage{Directory: &directoryOffer{Mode: "zipfile/deflated", Dirname: "incoming",
			Zipsize: int64(len(z)), Numbytes: numbytes, Numfiles: numfiles}},
		write: func(w io.Writer) error { _, err := w.Write(z); return err },
	}
}

// A hostile sender's directories: each is refused, and nothing is written
// anywhere, inside the receiving directory or beside it.
func TestReceiveHostileDirectories(t *testing.T) {
	zeros := make([]byte, 50<<20)
	for _, tc := range []struct {
		name     string
		entries  []zipEntry
		numfiles int
		numbytes int64
	}{
		{"zip slip", []zipEntry{{name: "ok.txt", data: []byte("ok")}, {name: "../../escaped.txt", data: []byte("evil")}}, 2, 6},
		{"absolute path", []zipEntry{{name: "/tmp/absolute.txt", data: []byte("evil")}}, 1, 4},
		{"symlink", []zipEntry{{name: "link", data: []byte("/etc"), mode: fs.ModeSymlink | 0o777}, {name: "link/passwd", data: []byte("x")}}, 2, 5},
		{"more bytes than offered", []zipEntry{{name: "a", data: bytes.Repeat([]byte("abc"), 1000)}}, 1, 10},
		{"more files than offered", []zipEntry{{name: "a", data: []byte("1")}, {name: "b", data: []byte("2")}}, 1, 2},
		{"zip bomb", []zipEntry{{name: "bomb", data: zeros}}, 1, int64(len(zeros))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			dir := filepath.Join(outside, "downloads")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			o := exchange(t, directoryItem(makeZip(t, tc.entries), tc.numfiles, tc.numbytes), Config{Dir: dir, AcceptFile: true})
			if o.recvErr == nil {
				t.Fatalf("the receiver accepted it:\n%s", o.recvStderr)
			}
			if o.sendErr == nil || !strings.Contains(o.sendErr.Error(), "could not unpack") {
				t.Fatalf("the sender was not told: %v", o.sendErr)
			}
			assertOnly(t, dir)
			assertOnly(t, outside, "downloads")
			if _, err := os.Stat("/tmp/absolute.txt"); err == nil {
				t.Fatal("/tmp/absolute.txt was written")
			}
		})
	}
}

// An honest directory arrives whole.
func TestReceiveDirectory(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	for name, data := range map[string]string{"a.txt": "A", "sub/b.txt": "B", "sub/deeper/c": "C"} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	item, err := prepare(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := exchange(t, item, Config{Dir: dir, AcceptFile: true})
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatalf("send %v, receive %v\n%s", o.sendErr, o.recvErr, o.recvStderr)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "tree", "sub", "deeper", "c")); err != nil || string(got) != "C" {
		t.Fatalf("tree/sub/deeper/c: %q, %v", got, err)
	}
	assertOnly(t, dir, "tree")
}
