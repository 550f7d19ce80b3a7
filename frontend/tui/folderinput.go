package tui

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// tooManyOffers is why an offer beyond maxWaitingOffers is refused, on
// both sides.
const tooManyOffers = "too many offers waiting for an answer"

// folderInput is the incoming-file dialog's "accept into another folder":
// a path (~ is the home directory, a relative one is relative to where
// gander runs), checked when Enter is pressed. A folder that does not
// exist is offered to be made (Enter again); anything else wrong is
// said, and the person can edit the path or go back: the offer waits.
type folderInput struct {
	input textinput.Model
	// problem is why the typed folder cannot be used yet.
	problem string
	// create is the folder, as typed, that was found missing: Enter
	// with the same text makes it.
	create string
}

func newFolderInput(c *common, width int, value string) *folderInput {
	in := textinput.New()
	in.Prompt = "folder: "
	in.SetStyles(c.styles.Input)
	in.SetWidth(max(10, width-len(in.Prompt)-1))
	in.SetValue(value)
	in.CursorEnd()
	return &folderInput{input: in}
}

func (f *folderInput) focus() tea.Cmd { return f.input.Focus() }

// helpKeys say what Enter does now, and that Esc goes back to the
// question (the offer still waits).
func (f *folderInput) helpKeys() []key.Binding {
	enter := "accept"
	if f.create != "" {
		enter = "create it and accept"
	}
	return []key.Binding{
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", enter)),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
	}
}

// update edits the path; a change forgets what was found of the old one.
func (f *folderInput) update(msg tea.Msg) tea.Cmd {
	before := f.input.Value()
	var cmd tea.Cmd
	f.input, cmd = f.input.Update(msg)
	if f.input.Value() != before {
		f.problem, f.create = "", ""
	}
	return cmd
}

// submit checks the typed folder: ok with the folder to accept into (and
// whether the session must make it), or not ok with the problem shown.
func (f *folderInput) submit() (dir string, create, ok bool) {
	typed := strings.TrimSpace(f.input.Value())
	if typed == "" {
		f.problem = "type a folder, or esc to go back"
		return "", false, false
	}
	dir = expandPath(typed)
	if f.create != "" && f.create == typed {
		return dir, true, true
	}
	info, err := os.Stat(dir)
	switch {
	case err == nil && info.IsDir():
		return dir, false, true
	case err == nil:
		f.problem = clean(typed) + " is a file, not a folder"
	case errors.Is(err, fs.ErrNotExist):
		f.problem = clean(typed) + " does not exist yet: enter again creates it"
		f.create = typed
	default:
		f.problem = errText(err)
	}
	return "", false, false
}

func (f *folderInput) view(st *Styles, width int) string {
	var b strings.Builder
	b.WriteString(f.input.View())
	if f.problem != "" {
		b.WriteString("\n" + wrap(st.Bad.Render("✗ ")+f.problem, width))
	}
	enter := " accept"
	if f.create != "" {
		enter = " create it and accept"
	}
	b.WriteString("\n" + st.Key.Render("enter") + enter + "   " + st.Key.Render("esc") + " back")
	return b.String()
}

// reask shows again an offer whose folder failed when the session tried
// it, with the folder input open on what failed.
func (q *dialogQueue) reask(e session.TransferFolderFailed) tea.Cmd {
	offer := e.Offer
	if q.typing() { // another folder is being typed: this one waits its turn
		q.items = append(q.items, dialog{offer: &offer})
		return nil
	}
	q.items = append([]dialog{{offer: &offer}}, q.items...)
	q.folder = newFolderInput(q.common, q.width, e.Dir)
	if e.Missing {
		q.folder.problem = clean(e.Dir) + " does not exist: enter creates it"
		q.folder.create = e.Dir
	} else {
		q.folder.problem = errText(e.Err)
	}
	return q.folder.focus()
}

// expandPath is a typed path as a shell would read it: a leading ~ is the
// home directory; a relative path is relative to gander's working
// directory.
func expandPath(typed string) string {
	if typed == "~" || strings.HasPrefix(typed, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			typed = filepath.Join(home, typed[1:])
		}
	}
	if abs, err := filepath.Abs(typed); err == nil {
		return abs
	}
	return typed
}
