package zipsafe

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// zent is one entry of a zip a test builds, hostile or not.
type zent struct {
	name   string
	body   []byte
	mode   fs.FileMode // 0: 0644 (or a folder for "x/")
	method uint16
	// raw: write the header as given (sizes below), not as archive/zip
	// would compute them.
	raw           bool
	claimSize     uint64
	claimCompSize uint64
	encryptedFlag bool
}

func buildZip(t testing.TB, ents []zent) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: e.method}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if strings.HasSuffix(e.name, "/") {
				mode = fs.ModeDir | 0o755
			}
		}
		fh.SetMode(mode)
		if e.encryptedFlag {
			fh.Flags |= 0x1
		}
		if !e.raw {
			w, err := zw.CreateHeader(fh)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(e.body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data := e.body
		if e.method == zip.Deflate {
			data = deflate(t, e.body)
		}
		fh.CRC32 = crc32.ChecksumIEEE(e.body)
		fh.UncompressedSize64 = e.claimSize
		fh.CompressedSize64 = e.claimCompSize
		if fh.CompressedSize64 == 0 {
			fh.CompressedSize64 = uint64(len(data))
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func deflate(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	fw.Write(p)
	fw.Close()
	return b.Bytes()
}

// place writes zip bytes to a file in its own folder and returns the zip's
// path and a target inside an empty folder, whose contents the test checks.
func place(t testing.TB, data []byte) (zipPath, parent, target string) {
	base := t.TempDir()
	zipPath = filepath.Join(base, "in.zip")
	if err := os.WriteFile(zipPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	parent = filepath.Join(base, "parent")
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	return zipPath, parent, filepath.Join(parent, "out")
}

// listTree lists every path under root, relative, sorted.
func listTree(t testing.TB, root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestExtractRefuses(t *testing.T) {
	zeros := make([]byte, 8<<20)
	deep := strings.Repeat("d/", maxPathDepth) + "f"
	cases := []struct {
		name  string
		ents  []zent
		lim   Limits
		want  error
		words string // in the error text
	}{
		{"zip-slip", []zent{{name: "../evil", body: []byte("x")}}, Limits{}, ErrUnsafeName, "escapes the folder"},
		{"zip-slip inside", []zent{{name: "a/../../evil", body: []byte("x")}}, Limits{}, ErrUnsafeName, "escapes"},
		{"absolute", []zent{{name: "/etc/passwd", body: []byte("x")}}, Limits{}, ErrUnsafeName, "absolute path"},
		{"drive letter", []zent{{name: "C:/x", body: []byte("x")}}, Limits{}, ErrUnsafeName, "drive letter"},
		{"backslash", []zent{{name: `..\evil`, body: []byte("x")}}, Limits{}, ErrUnsafeName, "backslash"},
		{"NUL", []zent{{name: "a\x00b", body: []byte("x")}}, Limits{}, ErrUnsafeName, "NUL"},
		{"empty name", []zent{{name: "", body: []byte("x")}}, Limits{}, ErrUnsafeName, "top folder"},
		{"root", []zent{{name: "/"}}, Limits{}, ErrUnsafeName, "absolute"},
		{"dot", []zent{{name: "./"}}, Limits{}, ErrUnsafeName, "top folder"},
		{"dot element", []zent{{name: "a/./b", body: []byte("x")}}, Limits{}, ErrUnsafeName, "refers to a directory"},
		{"double slash", []zent{{name: "a//b", body: []byte("x")}}, Limits{}, ErrUnsafeName, "empty name"},
		{"too deep", []zent{{name: deep, body: []byte("x")}}, Limits{}, ErrUnsafeName, "levels deep"},
		{"bidi override", []zent{{name: "invoice\u202Etxt.exe", body: []byte("x")}}, Limits{}, ErrUnsafeName, "U+202E"},
		{"trailing space", []zent{{name: "report.pdf ", body: []byte("x")}}, Limits{}, ErrUnsafeName, "space"},
		{"device name", []zent{{name: "CON", body: []byte("x")}}, Limits{}, ErrUnsafeName, "device"},
		{"symlink", []zent{{name: "link", body: []byte("/etc"), mode: fs.ModeSymlink | 0o777}}, Limits{}, ErrNotRegular, "symbolic link"},
		{"symlink then file through it", []zent{{name: "link", body: []byte(".."), mode: fs.ModeSymlink | 0o777}, {name: "link/evil", body: []byte("x")}}, Limits{}, ErrNotRegular, "symbolic link"},
		{"device", []zent{{name: "dev", mode: fs.ModeDevice | 0o644}}, Limits{}, ErrNotRegular, "device"},
		{"fifo", []zent{{name: "fifo", mode: fs.ModeNamedPipe | 0o644}}, Limits{}, ErrNotRegular, "named pipe"},
		{"duplicate", []zent{{name: "a", body: []byte("1")}, {name: "a", body: []byte("2")}}, Limits{}, ErrDuplicate, "another entry"},
		{"file and folder", []zent{{name: "a", body: []byte("1")}, {name: "a/b", body: []byte("2")}}, Limits{}, ErrDuplicate, "is a file"},
		{"folder then file", []zent{{name: "a/b", body: []byte("1")}, {name: "a", body: []byte("2")}}, Limits{}, ErrDuplicate, "another entry"},
		{"too many", []zent{{name: "a"}, {name: "b"}, {name: "c"}, {name: "d"}}, Limits{MaxFiles: 3}, ErrTooManyFiles, "more than 3 files"},
		{"too many folders", func() []zent {
			var e []zent
			for i := range DefaultMaxFiles + 1 {
				e = append(e, zent{name: "d" + itoa(i) + "/"})
			}
			return e
		}(), Limits{MaxFiles: 3}, ErrTooManyFiles, "folders"},
		{"claims too many bytes", []zent{{name: "a", body: make([]byte, 2000)}}, Limits{MaxBytes: 1000}, ErrTooLarge, "limit"},
		{"more bytes than claimed (stored)", []zent{{name: "a", body: make([]byte, 1000), raw: true, claimSize: 10}}, Limits{}, ErrCorrupt, "more data than the 10 bytes"},
		{"more bytes than claimed (deflated)", []zent{{name: "a", body: zeros, method: zip.Deflate, raw: true, claimSize: 100}}, Limits{}, ErrCorrupt, "more data than the 100 bytes"},
		{"fewer bytes than claimed", []zent{{name: "a", body: []byte("short"), raw: true, claimSize: 100}}, Limits{}, ErrCorrupt, "less data"},
		{"real bytes over the limit", []zent{{name: "a", body: []byte("ok")}, {name: "b", body: zeros, method: zip.Deflate}}, Limits{MaxBytes: 1 << 20, MaxRatio: -1}, ErrTooLarge, "limit"},
		{"ratio", []zent{{name: "bomb", body: zeros, method: zip.Deflate}}, Limits{MaxRatio: 10}, ErrRatio, "times its"},
		{"encrypted", []zent{{name: "a", body: []byte("x"), encryptedFlag: true}}, Limits{}, ErrCorrupt, "encrypted"},
		{"unknown method", []zent{{name: "a", body: []byte("x"), method: 99, raw: true, claimSize: 1}}, Limits{}, ErrCorrupt, "method 99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			zipPath, parent, target := place(t, buildZip(t, c.ents))
			_, err := Extract(zipPath, target, c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("Extract: %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.words) {
				t.Errorf("error %q does not say %q", err, c.words)
			}
			if left := listTree(t, parent); len(left) > 0 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

func TestExtractCorruptZip(t *testing.T) {
	zipPath, parent, target := place(t, []byte("PK\x03\x04 not a zip at all"))
	if _, err := Extract(zipPath, target, Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Extract: %v, want ErrCorrupt", err)
	}
	if left := listTree(t, parent); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

func TestExtractNeverOverwrites(t *testing.T) {
	zipPath, parent, target := place(t, buildZip(t, []zent{{name: "a", body: []byte("new")}}))
	if err := os.WriteFile(target, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(zipPath, target, Limits{}); !errors.Is(err, ErrExists) {
		t.Fatalf("Extract: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "mine" {
		t.Fatalf("target changed to %q", b)
	}
	if got := listTree(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("parent holds %q", got)
	}
	// The reservation: a folder made while Extract ran is not replaced.
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(target, 0o755)
	os.WriteFile(filepath.Join(target, "x"), nil, 0o644)
	if err := renameNoReplace(t.TempDir(), target); !errors.Is(err, ErrExists) {
		t.Fatalf("renameNoReplace over a folder: %v", err)
	}
}

// makeTree builds a tree with the awkward cases: empty files and folders,
// unicode names, nested folders, an executable and a symlink to a file.
func makeTree(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "tree")
	files := map[string]string{
		"a.txt":              "hello\n",
		"empty":              "",
		"sub/b.bin":          strings.Repeat("xyz", 10000),
		"sub/deeper/ünï.txt": "unicode ✓",
		"日本語/ファイル":           "名前",
		"run.sh":             "#!/bin/sh\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "run.sh"), 0o755)
	os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o755)
	os.MkdirAll(filepath.Join(dir, "sub", "empty-too"), 0o755)
	if err := os.Symlink("a.txt", filepath.Join(dir, "link-to-a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(dir, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestZipRoundTrip(t *testing.T) {
	dir := makeTree(t)
	var b bytes.Buffer
	st, err := Zip(&b, dir)
	if err != nil {
		t.Fatal(err)
	}
	size, st2, err := ZipSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(b.Len()) || st != st2 {
		t.Fatalf("ZipSize = %d %+v, Zip wrote %d %+v", size, st2, b.Len(), st)
	}
	if st.Files != 7 {
		t.Errorf("Stats.Files = %d, want 7 (the link to a file counts)", st.Files)
	}
	zipPath, _, target := place(t, b.Bytes())
	// The limits a receiver takes from the offer: numfiles, numbytes.
	got, err := Extract(zipPath, target, Limits{MaxFiles: st.Files, MaxBytes: st.Bytes})
	if err != nil {
		t.Fatal(err)
	}
	if got != st {
		t.Errorf("Extract %+v, Zip %+v", got, st)
	}
	want := []string{"a.txt", "empty", "empty-dir", "link-to-a", "run.sh", "sub", "sub/b.bin", "sub/deeper",
		"sub/deeper/ünï.txt", "sub/empty-too", "日本語", "日本語/ファイル"}
	if tree := listTree(t, target); !slices.Equal(tree, want) {
		t.Fatalf("extracted %q, want %q", tree, want)
	}
	for _, name := range []string{"a.txt", "sub/b.bin", "日本語/ファイル", "link-to-a"} {
		orig, _ := os.ReadFile(filepath.Join(dir, name))
		back, _ := os.ReadFile(filepath.Join(target, name))
		if !bytes.Equal(orig, back) {
			t.Errorf("%s differs", name)
		}
	}
	if fi, _ := os.Lstat(filepath.Join(target, "run.sh")); fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode %v", fi.Mode())
	}
	if fi, _ := os.Lstat(filepath.Join(target, "link-to-a")); !fi.Mode().IsRegular() {
		t.Errorf("link-to-a is %v, want a regular file", fi.Mode())
	}
}

func TestZipRefusesWhatExtractWould(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "evil\u202Etxt.exe"), nil, 0o644)
	if _, _, err := ZipSize(dir); !errors.Is(err, ErrUnsafeName) {
		t.Fatalf("ZipSize: %v, want ErrUnsafeName", err)
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func TestZipSizeMatches(t *testing.T) {
	trees := map[string]func(dir string){
		"empty files": func(dir string) {
			for i := range 50 {
				os.WriteFile(filepath.Join(dir, strings.Repeat("n", i+1)), nil, 0o644)
			}
		},
		"only empty folders": func(dir string) { os.MkdirAll(filepath.Join(dir, "a", "b", "c"), 0o755) },
		"mixed": func(dir string) {
			os.MkdirAll(filepath.Join(dir, "x", "y"), 0o755)
			os.WriteFile(filepath.Join(dir, "x", "f"), make([]byte, 100_001), 0o600)
			os.WriteFile(filepath.Join(dir, "é"), []byte("1"), 0o644)
		},
	}
	for name, fill := range trees {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fill(dir)
			checkZipSize(t, dir)
		})
	}
	t.Run("zip64 entries count", func(t *testing.T) {
		if testing.Short() {
			t.Skip("65,536 files")
		}
		dir := t.TempDir()
		for i := range 1<<16 + 1 {
			f, err := os.Create(filepath.Join(dir, strings.Repeat("f", 1+i%7)+itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		checkZipSize(t, dir)
	})
	t.Run("zip64 file size", func(t *testing.T) {
		if testing.Short() {
			t.Skip("reads a 4 GiB sparse file")
		}
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "big"))
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(1<<32 + 5)
		f.Close()
		os.WriteFile(filepath.Join(dir, "small"), []byte("after the big one: offsets past 4 GiB"), 0o644)
		checkZipSize(t, dir)
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

func checkZipSize(t *testing.T, dir string) {
	t.Helper()
	size, st, err := ZipSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	var c countingWriter
	st2, err := Zip(&c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if size != c.n || st != st2 {
		t.Fatalf("ZipSize %d %+v, Zip wrote %d %+v", size, st, c.n, st2)
	}
}

// TestZipBomb: a zip of a few KiB whose header claims 10 GB of zeros,
// and one whose deflated zeros really expand far: both end fast, with
// little memory, and leave nothing.
func TestZipBomb(t *testing.T) {
	zeros := make([]byte, 64<<20)
	cases := map[string][]zent{
		// Both size fields claim 10 GB; the data is 64 MiB of zeros
		// deflated to some 64 KiB. The ratio bound stops it.
		"claims 10 GB": {{name: "bomb", body: zeros, method: zip.Deflate, raw: true, claimSize: 10e9, claimCompSize: 10e9}},
		// An honest header: 64 MiB of zeros in ~64 KiB.
		"honest 1000:1": {{name: "bomb", body: zeros, method: zip.Deflate}},
		// Many entries, each under the grace but adding up.
		"many small, claimed total over MaxBytes": func() []zent {
			var e []zent
			for i := range 200 {
				e = append(e, zent{name: "z" + itoa(i), body: zeros[:1<<20], method: zip.Deflate})
			}
			return e
		}(),
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			data := buildZip(t, ents)
			zipPath, parent, target := place(t, data)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			lim := Limits{}
			if name == "many small, claimed total over MaxBytes" {
				lim.MaxBytes = 100 << 20
			}
			_, err := Extract(zipPath, target, lim)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrRatio) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Extract of a %d-byte bomb: %v", len(data), err)
			}
			t.Logf("%d-byte zip: %v after %v, %d KiB allocated", len(data), err, took, (after.TotalAlloc-before.TotalAlloc)>>10)
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			if left := listTree(t, parent); len(left) > 0 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

// TestGuardCountsEntries: a central directory with more entries than the
// zip's end record claims is cut off while it is read.
func TestGuardCountsEntries(t *testing.T) {
	var ents []zent
	for i := range 300 {
		ents = append(ents, zent{name: "f" + itoa(i)})
	}
	data := buildZip(t, ents)
	g := &guardReader{r: bytes.NewReader(data), maxSigs: 100, maxBytes: 1 << 30}
	_, err := zip.NewReader(g, int64(len(data)))
	if !errors.Is(err, ErrTooManyFiles) {
		t.Fatalf("NewReader through the guard: %v", err)
	}
	// Each signature counted once, across read boundaries.
	g = &guardReader{r: bytes.NewReader(data), maxSigs: 1 << 30, maxBytes: 1 << 30}
	var sigs int64
	for off := int64(0); off < int64(len(data)); off += 7 {
		p := make([]byte, min(7, int64(len(data))-off))
		g.ReadAt(p, off)
	}
	sigs = g.sigs
	if want := int64(bytes.Count(data, centralSig)); sigs != want {
		t.Fatalf("counted %d signatures in 7-byte reads, want %d", sigs, want)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(buildZip(f, []zent{{name: "a", body: []byte("x")}, {name: "d/"}, {name: "d/b", body: []byte("yy"), method: zip.Deflate}}))
	f.Add(buildZip(f, []zent{{name: "../evil", body: []byte("x")}}))
	f.Add(buildZip(f, []zent{{name: "link", body: []byte("/etc"), mode: fs.ModeSymlink | 0o777}}))
	f.Add(buildZip(f, []zent{{name: "a", body: make([]byte, 1000), raw: true, claimSize: 10}}))
	f.Add(buildZip(f, []zent{{name: "z", body: make([]byte, 1<<16), method: zip.Deflate}}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		zipPath, _, target := place(t, data)
		base := filepath.Dir(zipPath)
		_, err := Extract(zipPath, target, Limits{MaxFiles: 64, MaxBytes: 4 << 20})
		for _, p := range listTree(t, base) {
			if p != "in.zip" && p != "parent" && p != "parent/out" && !strings.HasPrefix(p, "parent/out/") {
				t.Fatalf("wrote %q outside the target (err %v)", p, err)
			}
			if err != nil && p != "in.zip" && p != "parent" {
				t.Fatalf("left %q behind after %v", p, err)
			}
			if fi, _ := os.Lstat(filepath.Join(base, p)); fi.Mode()&fs.ModeType&^fs.ModeDir != 0 {
				t.Fatalf("made %q with mode %v", p, fi.Mode())
			}
		}
		if err == nil {
			if _, serr := os.Stat(target); serr != nil {
				t.Fatalf("Extract succeeded but the target is missing: %v", serr)
			}
		}
	})
}
