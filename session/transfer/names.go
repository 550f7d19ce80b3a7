package transfer

import (
	"fmt"
	"github.com/gander-pair/gander/internal/sanitize"
	"path"
	"runtime"
	"strings"
	"unicode/utf8"
)

// checkName reports whether name is safe as one path element on this
// system. Names come from the peer, so the rules are conservative: see
// checkNameOn.
func checkName(name string) error {
	return checkNameOn(name, runtime.GOOS == "windows")
}

// checkNameOn applies the rules everywhere, and Windows' own ones when
// windows is set. Everywhere: not empty, "." or "..", at most 255 bytes
// of UTF-8 without control characters, no '/', '\' or ':' (separators on
// some system, drive letters, NTFS streams), and not a bare Windows
// device name, so a tree received here can be copied to Windows. Nor
// anything that makes a name look like another: invisible or
// direction-changing characters (see spoofing), or a space at either
// end ("report.pdf " shown as "report.pdf"). On
// Windows also: no device name with an extension ("con.txt"), none of
// <>"|?*, no trailing dot or space (Windows strips them, so "a." would
// be "a").
func checkNameOn(name string, windows bool) error {
	bad := func(reason string) error { return &UnsafeNameError{Name: name, Reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case name == "." || name == "..":
		return bad("refers to a directory")
	case len(name) > maxNameLen:
		return bad("too long")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return bad("control character")
		case r == '/' || r == '\\':
			return bad("path separator")
		case r == ':':
			return bad("colon (drive letter or stream)")
		case sanitize.SpoofingRune(r):
			return bad(fmt.Sprintf("invisible or formatting character U+%04X", r))
		case windows && strings.ContainsRune(`<>"|?*`, r):
			return bad("character not allowed on Windows")
		}
	}
	if strings.TrimSpace(name) != name {
		return bad("space at the start or end")
	}
	base := strings.TrimRight(name, " .")
	stem, _, hasExt := strings.Cut(base, ".")
	stem = strings.TrimRight(stem, " ")
	switch {
	case sanitize.WindowsDeviceName(base):
		return bad("Windows device name")
	case windows && hasExt && sanitize.WindowsDeviceName(stem):
		return bad("Windows device name")
	case windows && base != name:
		return bad("trailing dot or space")
	}
	return nil
}

// checkPath reports whether p, a directory entry's slash-separated path,
// is relative, at most maxPathDepth deep and made of safe names only.
func checkPath(p string) error {
	if len(p) > maxPathLen {
		return &UnsafeNameError{Name: p, Reason: "path too long"}
	}
	if strings.Count(p, "/") >= maxPathDepth {
		return &UnsafeNameError{Name: p, Reason: fmt.Sprintf("more than %d levels deep", maxPathDepth)}
	}
	if strings.HasPrefix(p, "/") {
		return &UnsafeNameError{Name: p, Reason: "absolute path"}
	}
	for elem := range strings.SplitSeq(p, "/") {
		if err := checkName(elem); err != nil {
			return &UnsafeNameError{Name: p, Reason: fmt.Sprintf("element %q: %s", elem, err.(*UnsafeNameError).Reason)}
		}
	}
	return nil
}

// numberedName is the i-th alternative to an existing name: "a (1).txt"
// for a file, "photos.2024 (1)" for a directory, ".bashrc (1)" for a
// dotfile.
func numberedName(name string, kind Kind, i int) string {
	ext := ""
	if kind == KindFile {
		ext = path.Ext(name)
		if ext == name {
			ext = "" // ".bashrc" is all stem
		}
	}
	return fmt.Sprintf("%s (%d)%s", strings.TrimSuffix(name, ext), i, ext)
}

// partialName is the temporary name a download is written under: hidden,
// recognisable, unique by suffix, and short enough for any file system.
func partialName(name, suffix string) string {
	const room = maxNameLen - len(".") - len(".gander-partial-") - 48 // pid, start, random
	for len(name) > room {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return "." + name + ".gander-partial-" + suffix
}
