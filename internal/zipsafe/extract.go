// Package zipsafe unpacks zips from a peer without trusting them, and
// zips a directory the way magic-wormhole's `wormhole send` does.
//
// Extract confines everything to its target: names are checked before
// anything is written, files are created through an os.Root (so no path
// can leave the temporary folder, whatever is on disk), only regular files
// and folders are made, and every byte is counted as it is decompressed,
// so a header that lies about sizes gets no further than the limits.
package zipsafe

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Limits bound what one zip may make Extract spend. A zero field takes
// its default; a negative one means no limit.
type Limits struct {
	// MaxFiles bounds the regular files of the zip (the offer's
	// "numfiles" counts those). Folder entries are bounded apart, by
	// max(MaxFiles, DefaultMaxFiles). Default 100,000: the zip's central
	// directory is held in memory (some 300 B per entry plus its name)
	// while it is unpacked.
	MaxFiles int
	// MaxBytes bounds the decompressed bytes of all files, counted as
	// they are written, not as the headers claim. Default 10 GiB (the
	// default --max-file-size).
	MaxBytes int64
	// MaxRatio bounds each file's decompressed size over its compressed
	// size, beyond its first RatioGrace bytes. Default 200: text
	// deflates to a tenth at best; only runs of one byte go further.
	MaxRatio float64
}

// The defaults of Limits, and the bytes of each file that no ratio is
// checked on (small files of zeros are honest and compress 1000:1).
const (
	DefaultMaxFiles = 100_000
	DefaultMaxBytes = 10 << 30
	DefaultMaxRatio = 200
	RatioGrace      = 1 << 20
)

// centralBytesPerEntry bounds the central directory Extract reads, per
// entry allowed: 46 B of header, the timestamp and zip64 extras and a
// name of some 150 bytes fit several times over.
const centralBytesPerEntry = 1024

func (l Limits) withDefaults() Limits {
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// Stats counts what was written (Extract) or zipped (Zip, ZipSize):
// regular files and their bytes; folders are not counted.
type Stats struct {
	Files int
	Bytes int64
}

// Extract unpacks the zip at zipPath into targetDir, which must not
// exist. Everything is written under a temporary folder beside targetDir
// and renamed into place only when the whole zip has been unpacked; on any
// error nothing is left behind. Refusals are *EntryError or *LimitError
// values wrapping the Err* reasons.
func Extract(zipPath, targetDir string, lim Limits) (Stats, error) {
	lim = lim.withDefaults()
	targetDir = filepath.Clean(targetDir)
	if _, err := os.Lstat(targetDir); err == nil {
		return Stats{}, fmt.Errorf("%w: %s", ErrExists, targetDir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Stats{}, err
	}
	f, err := os.Open(zipPath)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Stats{}, err
	}
	plan, err := readPlan(f, fi.Size(), lim)
	if err != nil {
		return Stats{}, err
	}

	parent, base := filepath.Split(targetDir)
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+trimName(base)+".gander-unzip-*")
	if err != nil {
		return Stats{}, err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	st, err := plan.write(tmp, fi.Size(), lim)
	if err != nil {
		return Stats{}, err
	}
	if err := renameNoReplace(tmp, targetDir); err != nil {
		return Stats{}, err
	}
	keep = true
	return st, nil
}

// trimName shortens a name for the temporary folder's, at a rune start.
func trimName(s string) string {
	for len(s) > 100 {
		s = s[:len(s)-1]
		for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
			s = s[:len(s)-1]
		}
	}
	return s
}

// renameNoReplace moves the finished folder into place without ever
// replacing what someone else put there meanwhile: an empty folder made
// with Mkdir (which fails if the name exists) reserves the name, and
// rename(2) replaces only an empty folder.
func renameNoReplace(from, to string) error {
	if err := os.Mkdir(to, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, to)
		}
		return err
	}
	if err := os.Rename(from, to); err != nil {
		// Windows will not rename over a folder: free our reservation
		// and try once more.
		if os.Remove(to) == nil {
			if err2 := os.Rename(from, to); err2 == nil {
				return nil
			}
		}
		return err
	}
	return nil
}

// entry is one checked entry of the zip, in the zip's order.
type entry struct {
	f    *zip.File
	name string // clean, slash-separated, without a trailing slash
	dir  bool
}

type plan struct{ entries []entry }

// readPlan reads the zip's directory within bounds and checks every entry
// before anything is written: names, kinds, duplicates, counts and the
// sizes the headers claim (the real sizes are checked while writing).
func readPlan(f io.ReaderAt, size int64, lim Limits) (*plan, error) {
	g := &guardReader{r: f}
	maxDirs := -1
	if lim.MaxFiles > 0 {
		maxDirs = max(lim.MaxFiles, DefaultMaxFiles)
		entries := int64(lim.MaxFiles + maxDirs)
		// Slack for the directory-end search, which reads the tail twice.
		g.maxSigs = entries + 70_000/4
		g.maxBytes = entries*centralBytesPerEntry + 1<<20
	}
	zr, err := zip.NewReader(g, size)
	g.maxSigs = 0 // from here on it reads file data, which the limits count as written
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		if g.err != nil {
			return nil, g.err
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if maxDirs >= 0 && len(zr.File) > lim.MaxFiles+maxDirs {
		return nil, &LimitError{Err: ErrTooManyFiles, Detail: fmt.Sprintf("%d entries, the limit is %d", len(zr.File), lim.MaxFiles+maxDirs)}
	}
	files, dirs := 0, 0
	// kinds maps every name the tree will have to whether it is a folder
	// and whether an entry of the zip named it (rather than implied it).
	type kind struct{ dir, named bool }
	kinds := make(map[string]kind, len(zr.File))
	p := &plan{entries: make([]entry, 0, len(zr.File))}
	var claimed uint64
	for _, zf := range zr.File {
		name, dir, reason := cleanEntryName(zf.Name)
		if reason != "" {
			return nil, &EntryError{Name: zf.Name, Err: ErrUnsafeName, Detail: reason}
		}
		mode := zf.Mode()
		switch {
		case dir && !mode.IsDir():
			return nil, &EntryError{Name: zf.Name, Err: ErrNotRegular, Detail: "a folder's name with the mode " + mode.String()}
		case !dir && mode.IsDir():
			return nil, &EntryError{Name: zf.Name, Err: ErrNotRegular, Detail: "a folder without the trailing slash"}
		case !dir && !mode.IsRegular():
			return nil, &EntryError{Name: zf.Name, Err: ErrNotRegular, Detail: describeMode(mode)}
		case zf.Flags&0x1 != 0:
			return nil, &EntryError{Name: zf.Name, Err: ErrCorrupt, Detail: "encrypted"}
		case zf.Method != zip.Store && zf.Method != zip.Deflate:
			return nil, &EntryError{Name: zf.Name, Err: ErrCorrupt, Detail: fmt.Sprintf("unknown compression method %d", zf.Method)}
		}
		if k, ok := kinds[name]; ok && (k.named || !dir) {
			return nil, &EntryError{Name: zf.Name, Err: ErrDuplicate, Detail: "another entry has this name"}
		}
		kinds[name] = kind{dir: dir, named: true}
		for parent := name; ; {
			i := strings.LastIndexByte(parent, '/')
			if i < 0 {
				break
			}
			parent = parent[:i]
			k, ok := kinds[parent]
			if ok && !k.dir {
				return nil, &EntryError{Name: zf.Name, Err: ErrDuplicate, Detail: fmt.Sprintf("%q is a file in this zip, not a folder", parent)}
			}
			if ok {
				break // its parents are known already
			}
			kinds[parent] = kind{dir: true}
		}
		if dir {
			if dirs++; maxDirs >= 0 && dirs > maxDirs {
				return nil, &LimitError{Err: ErrTooManyFiles, Detail: fmt.Sprintf("more than %d folders", maxDirs)}
			}
		} else {
			if files++; lim.MaxFiles > 0 && files > lim.MaxFiles {
				return nil, &LimitError{Err: ErrTooManyFiles, Detail: fmt.Sprintf("more than %d files, the limit", lim.MaxFiles)}
			}
			claimed += zf.UncompressedSize64
			if lim.MaxBytes > 0 && claimed > uint64(lim.MaxBytes) {
				return nil, &LimitError{Err: ErrTooLarge, Detail: fmt.Sprintf("the zip says it holds more than %d bytes, the limit", lim.MaxBytes)}
			}
		}
		p.entries = append(p.entries, entry{f: zf, name: name, dir: dir})
	}
	return p, nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// write unpacks the checked entries under tmp, through an os.Root so that
// no name can reach outside it.
func (p *plan) write(tmp string, zipSize int64, lim Limits) (Stats, error) {
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return Stats{}, err
	}
	defer root.Close()
	var st Stats
	buf := make([]byte, 64<<10)
	for _, e := range p.entries {
		if e.dir {
			if err := root.MkdirAll(e.name, 0o755); err != nil {
				return st, err
			}
			continue
		}
		if i := strings.LastIndexByte(e.name, '/'); i >= 0 {
			if err := root.MkdirAll(e.name[:i], 0o755); err != nil {
				return st, err
			}
		}
		n, err := writeFile(root, e, buf, zipSize, lim, st.Bytes)
		st.Bytes += n
		if err != nil {
			return st, err
		}
		st.Files++
	}
	return st, nil
}

// writeFile decompresses one entry into a new file, counting the real
// bytes against the limits.
func writeFile(root *os.Root, e entry, buf []byte, zipSize int64, lim Limits, written int64) (int64, error) {
	perm := e.f.Mode().Perm()&0o755 | 0o600 // no setuid, nothing others may write; always ours to read
	out, err := root.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	rc, err := e.f.Open()
	if err != nil {
		return 0, &EntryError{Name: e.f.Name, Err: ErrCorrupt, Detail: err.Error()}
	}
	defer rc.Close()

	// allowed is what this file may still write: what is left of
	// MaxBytes, and its compressed size times MaxRatio (the compressed
	// size from the header can lie, but never past the zip's own size).
	allowed := int64(-1)
	if lim.MaxBytes > 0 {
		allowed = lim.MaxBytes - written
	}
	ratioCap := int64(-1)
	comp := min(e.f.CompressedSize64, uint64(zipSize))
	if lim.MaxRatio > 0 {
		c := float64(comp)*lim.MaxRatio + RatioGrace
		if c < float64(1<<62) {
			ratioCap = int64(c)
		}
	}
	var n int64
	for {
		m, rerr := rc.Read(buf)
		n += int64(m)
		if allowed >= 0 && n > allowed {
			return n, &LimitError{Err: ErrTooLarge, Detail: fmt.Sprintf("%q decompresses past the limit of %d bytes for the whole zip", e.f.Name, lim.MaxBytes)}
		}
		if ratioCap >= 0 && n > ratioCap {
			return n, &LimitError{Err: ErrRatio, Detail: fmt.Sprintf("%q decompresses to more than %g times its %d compressed bytes (plus %d)", e.f.Name, lim.MaxRatio, comp, RatioGrace)}
		}
		if m > 0 {
			if _, err := out.Write(buf[:m]); err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, &EntryError{Name: e.f.Name, Err: ErrCorrupt, Detail: sizeLie(rerr, e.f)}
		}
	}
	return n, out.Close()
}

// sizeLie explains archive/zip's errors when the data and the header
// disagree.
func sizeLie(err error, f *zip.File) string {
	switch {
	case errors.Is(err, zip.ErrFormat):
		return fmt.Sprintf("more data than the %d bytes its header says", f.UncompressedSize64)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("less data than the %d bytes its header says", f.UncompressedSize64)
	case errors.Is(err, zip.ErrChecksum):
		return "checksum mismatch"
	}
	return err.Error()
}

// guardReader bounds what archive/zip may read, and hold in memory, while
// it parses the central directory: it parses every header it finds before
// Extract can count them, so the count and the bytes are bounded here.
// Each central header starts with the signature "PK\x01\x02"; counting
// the signatures in the bytes read (each read looks 3 bytes back, for
// signatures split between reads) bounds the entries from above.
type guardReader struct {
	r        io.ReaderAt
	maxSigs  int64 // 0: no bound
	maxBytes int64
	sigs     int64
	read     int64
	err      error
}

var centralSig = []byte("PK\x01\x02")

func (g *guardReader) ReadAt(p []byte, off int64) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.ReadAt(p, off)
	if g.maxSigs == 0 || n == 0 {
		return n, err
	}
	g.read += int64(n)
	var back [3]byte
	k := 0
	if off >= 3 {
		k, _ = g.r.ReadAt(back[:], off-3)
	}
	// A signature starting at position q is counted in the read that
	// holds q+3, so reads that do not overlap count each one once.
	joined := append(back[:k:k], p[:min(n, 3)]...)
	g.sigs += int64(bytes.Count(joined, centralSig))
	if n > 3 {
		g.sigs += int64(bytes.Count(p[:n], centralSig))
	}
	switch {
	case g.sigs > g.maxSigs:
		g.err = &LimitError{Err: ErrTooManyFiles, Detail: fmt.Sprintf("more than %d entries", g.maxSigs)}
	case g.read > g.maxBytes:
		g.err = &LimitError{Err: ErrTooManyFiles, Detail: fmt.Sprintf("its directory is over %d bytes", g.maxBytes)}
	}
	if g.err != nil {
		return 0, g.err
	}
	return n, err
}
