package tui

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrNotPaths wraps every reason a paste is not a list of dropped files.
var ErrNotPaths = errors.New("not a list of file paths")

// Bracketed-paste markers, in case a paste arrives with them still on.
const (
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
)

// ParseDroppedPaths turns what a terminal pastes when files are dragged
// onto it into their paths. It understands what terminals produce: paths
// separated by spaces or newlines (LF or CRLF), quoted in single or double
// quotes or with backslash escapes as a POSIX shell reads them, Windows
// paths ("C:\Users\me\a b.txt", \\server\share) whose backslashes are
// separators, and file:// URIs (percent-decoded; the host must be empty or
// localhost). A leading unquoted ~ or ~/ becomes home, when home is set.
// Every path must be absolute: dropped files always are, so typed text
// is told apart from a drop without touching the disk (the caller checks
// the paths exist).
func ParseDroppedPaths(s, home string) ([]string, error) {
	s = strings.ReplaceAll(strings.ReplaceAll(s, pasteStart, ""), pasteEnd, "")
	var paths []string
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return paths, nil
		}
		tilde := s[0] == '~' && (len(s) == 1 || strings.IndexByte("/ \t\r\n", s[1]) >= 0)
		word, rest, err := shellWord(s)
		if err != nil {
			return nil, err
		}
		s = rest
		p, err := wordPath(word, tilde, home)
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
}

// shellWord reads one word from the start of s, removing quotes and
// escapes, and returns it with what follows it.
func shellWord(s string) (word, rest string, err error) {
	// Windows paths are not escaped: there the backslash separates.
	windows := isWindowsPath(s)
	var b strings.Builder
	for s != "" {
		c := s[0]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return b.String(), s, nil
		case c == '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return "", "", fmt.Errorf("%w: unterminated single quote", ErrNotPaths)
			}
			b.WriteString(s[1 : 1+end])
			s = s[2+end:]
		case c == '"':
			n, err := doubleQuoted(&b, s[1:], windows || isWindowsPath(s[1:]))
			if err != nil {
				return "", "", err
			}
			s = s[1+n:]
		case c == '\\' && !windows:
			if len(s) == 1 {
				return "", "", fmt.Errorf("%w: backslash at the end", ErrNotPaths)
			}
			b.WriteByte(s[1])
			s = s[2:]
		default:
			b.WriteByte(c)
			s = s[1:]
		}
	}
	return b.String(), "", nil
}

// doubleQuoted copies the inside of a double-quoted string starting at s
// (after the opening quote) to b and returns how many bytes it used,
// closing quote included. As in a POSIX shell, a backslash escapes only
// " \ $ and `, and on Windows paths nothing.
func doubleQuoted(b *strings.Builder, s string, windows bool) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\' && !windows && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return 0, fmt.Errorf("%w: unterminated double quote", ErrNotPaths)
}

// isWindowsPath reports whether s starts like a Windows path: a drive
// letter and a backslash, or a UNC \\server.
func isWindowsPath(s string) bool {
	return strings.HasPrefix(s, `\\`) ||
		len(s) >= 3 && isLetter(s[0]) && s[1] == ':' && s[2] == '\\'
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// wordPath turns one unquoted word into a path: a file URI is decoded, a
// tilde expanded, and the result must be absolute.
func wordPath(word string, tilde bool, home string) (string, error) {
	p := word
	switch {
	case len(word) >= 5 && strings.EqualFold(word[:5], "file:"):
		u, err := url.Parse(word)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrNotPaths, err)
		}
		if u.Host != "" && !strings.EqualFold(u.Host, "localhost") {
			return "", fmt.Errorf("%w: %q is on another host", ErrNotPaths, word)
		}
		p = u.Path
		// file:///C:/Users/me: the drive follows the slash.
		if len(p) >= 3 && p[0] == '/' && isLetter(p[1]) && p[2] == ':' {
			p = p[1:]
		}
	case tilde && home != "":
		p = strings.TrimSuffix(home, "/") + word[1:]
		if p == "" {
			p = "/"
		}
	}
	if !strings.HasPrefix(p, "/") && !isWindowsPath(p) &&
		!(len(p) >= 3 && isLetter(p[0]) && p[1] == ':' && p[2] == '/') {
		return "", fmt.Errorf("%w: %q is not an absolute path", ErrNotPaths, word)
	}
	// No file manager hands out such names; an escape sequence means the
	// paste is something else.
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("%w: control character in %q", ErrNotPaths, word)
	}
	return p, nil
}
