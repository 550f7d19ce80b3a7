package zipsafe

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Zip writes dir as magic-wormhole 0.24's `wormhole send DIR` does
// (cli/cmd_send.py: zipstream-ng with sized=True, so every entry is
// stored uncompressed): the regular files under dir, and its empty
// folders as "name/" entries, with names relative to dir, following
// symbolic links (as the reference does) but never into a loop. Every
// file carries its permission bits: `wormhole receive` chmods each file
// to them. The offer's "mode" stays "zipfile/deflated", as the
// reference's does; the receivers accept stored entries.
//
// Zip writes exactly ZipSize(dir) bytes unless the tree changes between
// the two calls; a file whose size changes while it is read fails with
// ErrChanged rather than sending bytes that differ from the offer.
// Names that Extract would refuse are refused here too (ErrUnsafeName),
// and anything but files and folders (ErrNotRegular).
func Zip(w io.Writer, dir string) (Stats, error) {
	entries, st, err := walk(dir)
	if err != nil {
		return Stats{}, err
	}
	zw := zip.NewWriter(w)
	buf := make([]byte, 256<<10)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Store, Modified: e.mod}
		fh.SetMode(e.mode)
		out, err := zw.CreateHeader(fh)
		if err != nil {
			return Stats{}, err
		}
		if e.dir {
			continue
		}
		if err := copyExactly(out, e, buf); err != nil {
			return Stats{}, err
		}
	}
	if err := zw.Close(); err != nil {
		return Stats{}, err
	}
	return st, nil
}

// copyExactly copies e's file, which must still have the size it had
// when the tree was walked.
func copyExactly(w io.Writer, e zipEntry, buf []byte) error {
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(f, e.size), buf)
	if err != nil {
		return err
	}
	if n < e.size {
		return fmt.Errorf("%w: %s shrank from %d to %d bytes", ErrChanged, e.path, e.size, n)
	}
	if m, _ := f.Read(buf[:1]); m > 0 {
		return fmt.Errorf("%w: %s grew past %d bytes", ErrChanged, e.path, e.size)
	}
	return nil
}

// Sizes of archive/zip's records (APPNOTE 4.3; archive/zip/struct.go).
const (
	localHeaderLen   = 30
	centralHeaderLen = 46
	dataDescLen      = 16
	dataDesc64Len    = 24
	extTimeExtraLen  = 9  // the "extended timestamp" extra Modified adds
	zip64ExtraLen    = 28 // the central zip64 extra archive/zip writes
	endLen           = 22
	end64Len         = 56 + 20 // zip64 end record and its locator
	uint32max        = 1<<32 - 1
	uint16max        = 1<<16 - 1
)

// ZipSize is the number of bytes Zip(w, dir) will write, computed from
// the tree without reading any file, for the offer's "zipsize". It
// follows archive/zip's Writer record for record (stored entries, a data
// descriptor after each file, the timestamp extra, zip64 records where
// sizes or offsets need them); TestZipSizeMatches holds it to that.
func ZipSize(dir string) (int64, Stats, error) {
	entries, st, err := walk(dir)
	if err != nil {
		return 0, Stats{}, err
	}
	var off, central uint64
	for _, e := range entries {
		name := uint64(len(e.name))
		start := off
		off += localHeaderLen + name + extTimeExtraLen
		zip64 := false
		if !e.dir {
			size := uint64(e.size)
			off += size
			zip64 = size >= uint32max
			if zip64 {
				off += dataDesc64Len
			} else {
				off += dataDescLen
			}
		}
		central += centralHeaderLen + name + extTimeExtraLen
		if zip64 || start >= uint32max {
			central += zip64ExtraLen
		}
	}
	total := off + central + endLen
	if len(entries) >= uint16max || central >= uint32max || off >= uint32max {
		total += end64Len
	}
	return int64(total), st, nil
}

type zipEntry struct {
	path string // on disk
	name string // in the zip: slash-separated, "name/" for a folder
	dir  bool
	size int64
	mode fs.FileMode
	mod  time.Time
}

// walk lists what Zip writes, in its order: each folder's entries sorted
// by name, files and empty folders only (zipstream-ng's walk with
// preserve_empty), symbolic links followed unless they lead back into a
// folder being walked.
func walk(dir string) ([]zipEntry, Stats, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, Stats{}, err
	}
	if !fi.IsDir() {
		return nil, Stats{}, fmt.Errorf("zipsafe: %s is not a folder", dir)
	}
	var (
		out []zipEntry
		st  Stats
	)
	var visit func(path, rel string, ancestors []fs.FileInfo) error
	visit = func(path, rel string, ancestors []fs.FileInfo) error {
		if len(ancestors) > maxPathDepth {
			return &EntryError{Name: rel, Err: ErrUnsafeName, Detail: fmt.Sprintf("more than %d levels deep", maxPathDepth)}
		}
		des, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, de := range des {
			p := filepath.Join(path, de.Name())
			name := de.Name()
			if rel != "" {
				name = rel + "/" + name
			}
			if _, _, reason := cleanEntryName(name); reason != "" {
				return &EntryError{Name: name, Err: ErrUnsafeName, Detail: reason + " (the receiver would refuse it)"}
			}
			fi, err := os.Stat(p) // follows links, as the reference does
			if err != nil {
				return err
			}
			switch {
			case fi.IsDir():
				if loops(fi, ancestors) {
					continue // zipstream-ng skips folders it has walked, too
				}
				before := len(out)
				if err := visit(p, name, append(ancestors, fi)); err != nil {
					return err
				}
				if len(out) == before { // nothing inside: keep it as "name/"
					out = append(out, zipEntry{path: p, name: name + "/", dir: true, mode: fs.ModeDir | fi.Mode().Perm(), mod: fi.ModTime().UTC()})
				}
			case fi.Mode().IsRegular():
				out = append(out, zipEntry{path: p, name: name, size: fi.Size(), mode: fi.Mode().Perm(), mod: fi.ModTime().UTC()})
				st.Files++
				st.Bytes += fi.Size()
			default:
				return &EntryError{Name: name, Err: ErrNotRegular, Detail: describeMode(fi.Mode())}
			}
		}
		return nil
	}
	if err := visit(dir, "", []fs.FileInfo{fi}); err != nil {
		return nil, Stats{}, err
	}
	return out, st, nil
}

func loops(fi fs.FileInfo, ancestors []fs.FileInfo) bool {
	for _, a := range ancestors {
		if os.SameFile(fi, a) {
			return true
		}
	}
	return false
}
