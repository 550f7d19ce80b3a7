package zipsafe

import (
	"fmt"
	"github.com/gander-pair/gander/internal/sanitize"
	"strings"
	"unicode/utf8"
)

// The name rules are session/transfer's (names.go, checkNameOn with
// windows=false, and checkPath); the character and device-name rules are
// shared through internal/sanitize, the rest mirrored here because a leaf
// package may not import a layer. Keep the two in step: a tree that gander
// accepts over Dilation and one it accepts in a classic zip obey the same
// rules.
const (
	maxNameLen   = 255  // bytes in one name element, as on most file systems
	maxPathLen   = 4096 // bytes in an entry's path
	maxPathDepth = 256  // levels in an entry's path
)

// checkName reports why name is not safe as one path element, or "".
// Everywhere: not empty, "." or "..", at most 255 bytes of UTF-8 without
// control characters, no '/', '\' or ':' (separators somewhere, drive
// letters, NTFS streams), no bare Windows device name (so a tree received
// here can be copied to Windows), nothing that makes a name look like
// another (see spoofing) and no space at either end.
func checkName(name string) string {
	switch {
	case name == "":
		return "empty name (a doubled or leading slash)"
	case name == "." || name == "..":
		return "refers to a directory (" + name + ")"
	case len(name) > maxNameLen:
		return "too long"
	case !utf8.ValidString(name):
		return "not UTF-8"
	}
	for _, r := range name {
		switch {
		case r == 0:
			return "NUL byte"
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return "control character"
		case r == '/' || r == '\\':
			return "path separator"
		case r == ':':
			return "colon (drive letter or stream)"
		case sanitize.SpoofingRune(r):
			return fmt.Sprintf("invisible or formatting character U+%04X", r)
		}
	}
	if strings.TrimSpace(name) != name {
		return "space at the start or end"
	}
	if sanitize.WindowsDeviceName(strings.TrimRight(name, " .")) {
		return "Windows device name"
	}
	return ""
}

// cleanEntryName checks a zip entry's name and returns it without the
// trailing slash that marks a directory, and whether it had one. The name
// must already be in its clean form: "a/./b", "a//b" and "a/../b" are
// refused rather than cleaned, since only a hostile zip writes them.
func cleanEntryName(name string) (clean string, dir bool, reason string) {
	switch {
	case strings.IndexByte(name, 0) >= 0:
		return "", false, "NUL byte"
	case strings.Contains(name, `\`):
		return "", false, "backslash (a Windows path separator)"
	case strings.HasPrefix(name, "/"):
		return "", false, "absolute path"
	case len(name) >= 2 && name[1] == ':' && (name[0]|0x20 >= 'a' && name[0]|0x20 <= 'z'):
		return "", false, "drive letter"
	case len(name) > maxPathLen:
		return "", false, fmt.Sprintf("path longer than %d bytes", maxPathLen)
	}
	clean, dir = strings.CutSuffix(name, "/")
	if clean == "" || clean == "." {
		return "", false, "names the top folder itself"
	}
	if strings.Count(clean, "/") >= maxPathDepth {
		return "", false, fmt.Sprintf("more than %d levels deep", maxPathDepth)
	}
	for elem := range strings.SplitSeq(clean, "/") {
		if elem == ".." {
			return "", false, "escapes the folder (..)"
		}
		if r := checkName(elem); r != "" {
			return "", false, fmt.Sprintf("element %q: %s", elem, r)
		}
	}
	return clean, dir, ""
}
