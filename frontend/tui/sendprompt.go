package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// sendPrompt is where files dropped on the terminal land: a paste while
// no input has the focus opens it holding the pasted text (s opens it
// empty, to type a path). Typed paths may be relative to gander's
// working directory, and Tab completes the last one. It shows the paths
// it understood; Enter offers them to the peer, Esc forgets them.
type sendPrompt struct {
	*common
	input  textinput.Model
	home   string
	cwd    string // what a relative path is relative to
	paths  []string
	err    string
	closed bool // sent or cancelled: the root drops it
	// choices are the names the last Tab found, when it found several.
	choices []string
}

// newSendPrompt opens a prompt holding text; cmd focuses its input.
func newSendPrompt(c *common, width int, text, home string) (p *sendPrompt, cmd tea.Cmd) {
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "drop files here, or type a path"
	in.SetStyles(c.styles.Input)
	in.CharLimit = 64 << 10
	in.SetWidth(max(10, width-3))
	cwd, _ := os.Getwd()
	p = &sendPrompt{common: c, input: in, home: home, cwd: cwd}
	p.input.SetValue(text)
	p.input.CursorEnd()
	p.parse()
	return p, p.input.Focus()
}

// parse reads the paths in the prompt and checks that each exists (a
// stat, quick enough for Update); the complaint is shown as the text
// changes.
func (p *sendPrompt) parse() {
	p.paths, p.err = nil, ""
	text := strings.TrimSpace(p.input.Value())
	if text == "" {
		return
	}
	paths, err := parseTypedPaths(text, p.home, p.cwd)
	if err != nil {
		if errors.Is(err, ErrNotPaths) {
			p.err = "not a file path: type a path (tab completes it), or drop the file on the terminal"
		} else {
			p.err = errText(err)
		}
		return
	}
	for _, path := range paths {
		info, err := os.Stat(path)
		switch {
		case err != nil:
			p.err = fmt.Sprintf("%s: no such file or directory", clean(path))
			return
		case !info.Mode().IsRegular() && !info.IsDir():
			p.err = fmt.Sprintf("%s is neither a file nor a directory", clean(path))
			return
		}
	}
	p.paths = paths
}

// update handles a key or a paste; Enter offers the files and closes the
// prompt, Esc closes it.
func (p *sendPrompt) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, p.keys.Cancel):
			p.closed = true
			return nil
		case key.Matches(msg, p.keys.Complete):
			p.complete()
			return nil
		case key.Matches(msg, p.keys.Submit):
			if len(p.paths) == 0 {
				if p.err == "" {
					p.err = "nothing to send yet"
				}
				return nil
			}
			p.closed = true
			p.say(fmt.Sprintf("offering %d item(s) to your peer…", len(p.paths)), false)
			return p.send(session.SendFiles{Paths: p.paths})
		}
	case tea.PasteMsg:
	default:
		return nil
	}
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	p.choices = nil
	p.parse()
	return cmd
}

func (p *sendPrompt) helpKeys() []key.Binding {
	return []key.Binding{p.keys.SendSubmit, p.keys.Complete, p.keys.Cancel}
}

func (p *sendPrompt) setSize(int, int) {}
func (p *sendPrompt) setFocus(focus)   {}

func (p *sendPrompt) view(width, _ int) string {
	st := p.styles
	var b strings.Builder
	b.WriteString(st.Header.Render("Send files to your peer") + "\n\n")
	b.WriteString(p.input.View())
	if len(p.choices) > 0 {
		b.WriteString("\n" + st.Dim.Render(strings.Join(choiceLines(p.choices, width-2), "\n")))
	}
	for i, path := range p.paths {
		if i == maxCompletionLines {
			b.WriteString("\n" + st.Dim.Render(fmt.Sprintf("  … and %d more", len(p.paths)-i)))
			break
		}
		b.WriteString("\n" + fit("  "+st.Good.Render("✓ ")+clean(path), width))
	}
	if p.err != "" && len(p.choices) == 0 { // the choices say why
		b.WriteString("\n" + wrap(st.Bad.Render("✗ ")+p.err, width))
	}
	b.WriteString("\n\n" + st.Key.Render("enter") + " send   " + st.Key.Render("tab") + " complete   " + st.Key.Render("esc") + " cancel")
	return b.String()
}

// parseTypedPaths is ParseDroppedPaths for what a person types: a path
// that is not absolute is taken relative to cwd (a drop is always
// absolute, so there a relative word means the paste is not paths).
func parseTypedPaths(s, home, cwd string) ([]string, error) {
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
		if !tilde && relativeWord(word) {
			if cwd == "" {
				return nil, fmt.Errorf("%w: %q is relative and the working directory is unknown", ErrNotPaths, word)
			}
			word = filepath.Join(cwd, word)
		}
		path, err := wordPath(word, tilde, home)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(path, "/") {
			path = filepath.Clean(path) // "photos/", as completed, is photos
		}
		paths = append(paths, path)
	}
}

// relativeWord: a word that names a path relative to the working
// directory (not absolute, not ~, not a file: URL, not Windows').
func relativeWord(word string) bool {
	return word != "" && !filepath.IsAbs(word) && !strings.HasPrefix(word, "~") &&
		!(len(word) >= 5 && strings.EqualFold(word[:5], "file:")) && !isWindowsPath(word)
}

// Bounds on one Tab: the names read from a directory, and those shown.
const maxCompletionEntries = 10_000

// complete extends the last path in the input: to the one name that
// fits, or as far as all that fit agree (then they are listed). Spaces in
// names are escaped, as a shell would; a directory gets its "/".
func (p *sendPrompt) complete() {
	text := p.input.Value()
	start := lastWordStart(text)
	word := unescapeWord(text[start:])
	dirPart, prefix := "", word
	if i := strings.LastIndexByte(word, '/'); i >= 0 {
		dirPart, prefix = word[:i+1], word[i+1:]
	}
	dir := dirPart
	switch {
	case dir == "":
		dir = p.cwd
	case dir == "~/" || strings.HasPrefix(dir, "~/"):
		dir = filepath.Join(p.home, dir[1:])
	case !filepath.IsAbs(dir):
		dir = filepath.Join(p.cwd, dir)
	}
	names := matchingNames(dir, prefix)
	p.choices = nil
	switch len(names) {
	case 0:
		p.err = fmt.Sprintf("nothing here starts with %q", clean(prefix))
		return
	case 1:
	default:
		p.choices = names
	}
	common := commonPrefix(names)
	for !utf8.ValidString(common) {
		common = common[:len(common)-1]
	}
	completed := dirPart + common
	if len(names) == 1 && strings.HasSuffix(names[0], "/") {
		completed = dirPart + names[0]
	}
	p.input.SetValue(text[:start] + escapeWord(completed))
	p.input.CursorEnd()
	p.parse()
}

// matchingNames lists dir's entries starting with prefix, sorted, a
// directory with a "/" after it; hidden ones only for a prefix with ".".
func matchingNames(dir, prefix string) []string {
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer f.Close()
	entries, _ := f.ReadDir(maxCompletionEntries)
	var names []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || strings.HasPrefix(name, ".") && !strings.HasPrefix(prefix, ".") {
			continue
		}
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 && isDir(filepath.Join(dir, name)) {
			name += "/"
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// lastWordStart is where the last word begins: after the last space that
// is not escaped with a backslash.
func lastWordStart(s string) int {
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ' ', '\t':
			start = i + 1
		}
	}
	return min(start, len(s))
}

func unescapeWord(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// escapeWord escapes what the parser would read as shell syntax.
func escapeWord(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(" \t\\'\"", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// choiceLines lays names out in rows of at most width cells, at most
// maxCompletionLines of them, the last saying how many more there are.
func choiceLines(names []string, width int) []string {
	var lines []string
	line := "  "
	for i, n := range names {
		n = clean(n)
		if line != "  " && len(line)+2+len(n) > width {
			if len(lines) == maxCompletionLines-1 {
				return append(lines, line+"  … and "+fmt.Sprint(len(names)-i)+" more")
			}
			lines = append(lines, line)
			line = "  "
		}
		if line != "  " {
			line += "  "
		}
		line += n
	}
	return append(lines, fit(line, width))
}
