package tui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// dialog is a question from the peer: one of the two is set.
type dialog struct {
	perm     *session.PermissionRequest
	offer    *session.TransferOffered
	keyboard *session.ShareKeyboardRequested // sharepane.go
}

// dialogQueue holds the peer's questions in the order they came; the
// first is shown as a modal, the others wait ("2 more waiting"). The
// session bounds the permission requests (session.MaxPendingAsks, one per
// distinct request); the queue bounds the offers (maxWaitingOffers).
type dialogQueue struct {
	*common
	// onAccept shows an accepted offer in the transfers pane.
	onAccept func(accepted)
	width    int // the modal's inner width
	items    []dialog
	// folder, when set, is the "accept into another folder" input for
	// the first item, an offer.
	folder *textinput.Model
	// blocked: the user denied everything for the rest of the session
	// (the block key); later questions are answered no at once.
	blocked bool
}

func (q *dialogQueue) active() bool { return len(q.items) > 0 }

// update queues the peer's questions as they come and drops those
// withdrawn; the keys (and pastes, for the folder input) answer the
// first; the end of the session drops them all.
func (q *dialogQueue) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventMsg:
		switch e := msg.ev.(type) {
		case session.PermissionRequest:
			return q.ask(dialog{perm: &e})
		case session.PermissionWithdrawn:
			q.withdraw(e.ID)
		case session.TransferOffered:
			return q.ask(dialog{offer: &e})
		case session.ShareKeyboardRequested:
			return q.ask(dialog{keyboard: &e})
		}
	case endedMsg:
		q.clear()
	case tea.KeyPressMsg, tea.PasteMsg:
		blocked := q.blocked
		cmd, acc := q.answer(msg)
		if acc != nil {
			q.onAccept(*acc)
		}
		if q.blocked && !blocked {
			q.say("denying everything your peer asks for the rest of this session", false)
		}
		return cmd
	}
	return nil
}

// ask queues one of the peer's questions (or answers it at once).
func (q *dialogQueue) ask(d dialog) tea.Cmd {
	cmd, notice := q.push(d)
	if notice != "" {
		q.say(notice, true)
	}
	return cmd
}

func (q *dialogQueue) helpKeys() []key.Binding {
	k := q.keys
	switch {
	case !q.active():
		return nil
	case q.typing():
		return []key.Binding{k.Submit, k.Cancel}
	case q.items[0].perm != nil:
		return []key.Binding{k.AllowOnce, k.AllowAlways, k.Deny, k.DenyAll, k.Block}
	case q.items[0].keyboard != nil:
		return []key.Binding{k.LetType, k.KeepReadOnly, k.DenyAll, k.Block}
	}
	return []key.Binding{k.Accept, k.AcceptInto, k.Refuse, k.RefuseAll, k.Block}
}

func (q *dialogQueue) setSize(width, _ int) { q.width = width }
func (q *dialogQueue) setFocus(focus)       {}

// typing says whether the folder input has the keyboard.
func (q *dialogQueue) typing() bool { return q.folder != nil }

// push queues a question, or answers it no at once: when the user blocked
// the peer's requests, or when too many offers wait already. The notice
// is for the status line.
func (q *dialogQueue) push(d dialog) (cmd tea.Cmd, notice string) {
	switch {
	case q.blocked:
		return q.refuse(d), ""
	case d.offer != nil && q.offers() >= maxWaitingOffers:
		return q.refuse(d), fmt.Sprintf("refused %q from your peer: too many offers waiting for an answer", clean(d.offer.Name))
	}
	q.items = append(q.items, d)
	return nil, ""
}

func (q *dialogQueue) offers() int {
	n := 0
	for _, d := range q.items {
		if d.offer != nil {
			n++
		}
	}
	return n
}

// refuse answers one question no.
func (q *dialogQueue) refuse(d dialog) tea.Cmd {
	switch {
	case d.perm != nil:
		return q.send(session.Answer{ID: d.perm.ID, Decision: session.Deny})
	case d.keyboard != nil:
		return q.send(session.Answer{ID: d.keyboard.ID, Decision: session.Deny})
	}
	return q.send(session.RefuseTransfer{ID: d.offer.ID})
}

// denyAll answers every waiting question no; forSession every later one
// too. The session denies the permission requests itself (those on their
// way as well); offers are refused one by one.
func (q *dialogQueue) denyAll(forSession bool) tea.Cmd {
	cmds := []tea.Cmd{q.send(session.DenyAll{ForSession: forSession})}
	for _, d := range q.items {
		if d.offer != nil {
			cmds = append(cmds, q.refuse(d))
		}
	}
	q.clear()
	q.blocked = q.blocked || forSession
	return inOrder(cmds)
}

// inOrder runs commands one after the other, as one command.
func inOrder(cmds []tea.Cmd) tea.Cmd {
	return func() tea.Msg {
		for _, c := range cmds {
			c()
		}
		return nil
	}
}

// withdraw drops a permission request the session no longer waits for.
func (q *dialogQueue) withdraw(id int64) {
	for i, d := range q.items {
		if d.perm != nil && d.perm.ID == id || d.keyboard != nil && d.keyboard.ID == id {
			q.drop(i)
			return
		}
	}
}

func (q *dialogQueue) drop(i int) {
	if i == 0 {
		q.folder = nil
	}
	q.items = append(q.items[:i], q.items[i+1:]...)
}

func (q *dialogQueue) clear() { q.items, q.folder = nil, nil }

// accepted is an offer the user accepted, for the transfers pane.
type accepted struct {
	offer session.TransferOffered
	dir   string
}

// answer handles a key (or a paste, for the folder input) for the first
// dialog.
func (q *dialogQueue) answer(msg tea.Msg) (tea.Cmd, *accepted) {
	d := q.items[0]
	k, isKey := msg.(tea.KeyPressMsg)
	if q.folder != nil {
		if isKey {
			switch {
			case key.Matches(k, q.keys.Cancel):
				q.folder = nil
				return nil, nil
			case key.Matches(k, q.keys.Submit):
				dir := strings.TrimSpace(q.folder.Value())
				q.drop(0)
				return q.send(session.AcceptTransfer{ID: d.offer.ID, Dir: dir}), &accepted{*d.offer, dir}
			}
		}
		var cmd tea.Cmd
		*q.folder, cmd = q.folder.Update(msg)
		return cmd, nil
	}
	if !isKey {
		return nil, nil
	}
	switch {
	case key.Matches(k, q.keys.DenyAll):
		return q.denyAll(false), nil
	case key.Matches(k, q.keys.Block):
		return q.denyAll(true), nil
	}
	if d.keyboard != nil {
		decision, ok := keyboardDialogAnswer(q.keys, k)
		if !ok {
			return nil, nil
		}
		q.drop(0)
		return q.send(session.Answer{ID: d.keyboard.ID, Decision: decision}), nil
	}
	if d.perm != nil {
		decision := session.Decision(-1)
		switch {
		case key.Matches(k, q.keys.AllowOnce):
			decision = session.AllowOnce
		case key.Matches(k, q.keys.AllowAlways):
			decision = session.AllowAlways
		case key.Matches(k, q.keys.Deny):
			decision = session.Deny
		}
		if decision < 0 {
			return nil, nil
		}
		q.drop(0)
		return q.send(session.Answer{ID: d.perm.ID, Decision: decision}), nil
	}
	switch {
	case key.Matches(k, q.keys.Accept):
		q.drop(0)
		return q.send(session.AcceptTransfer{ID: d.offer.ID}), &accepted{*d.offer, d.offer.SaveDir}
	case key.Matches(k, q.keys.AcceptInto):
		in := textinput.New()
		in.Prompt = "folder: "
		in.SetStyles(q.styles.Input)
		in.SetWidth(max(10, q.width-len(in.Prompt)-1))
		in.SetValue(d.offer.SaveDir)
		in.CursorEnd()
		q.folder = &in
		return q.folder.Focus(), nil
	case key.Matches(k, q.keys.Refuse):
		q.drop(0)
		return q.send(session.RefuseTransfer{ID: d.offer.ID}), nil
	}
	return nil, nil
}

// view is the first dialog's content, for a modal of the given inner width.
func (q *dialogQueue) view(width, _ int) string {
	st, d := q.styles, q.items[0]
	var b strings.Builder
	if d.keyboard != nil {
		b.WriteString(keyboardDialogView(st, width))
	} else if d.perm != nil {
		r := d.perm.Request
		where := "127.0.0.1, on any free port"
		if r.Port != 0 {
			where = "127.0.0.1:" + strconv.Itoa(r.Port)
		}
		b.WriteString(st.Header.Render("Your peer asks for a port") + "\n\n")
		b.WriteString(wrap(fmt.Sprintf("Your peer asks to listen for service %s on %s. Connections to it will go to the peer's machine.",
			st.Code.Render(strconv.Quote(clean(r.Service))), where), width))
		b.WriteString("\n\n" + wrap(st.Key.Render("o")+" allow once   "+st.Key.Render("a")+" allow always   "+st.Key.Render("d")+" deny", width))
	} else {
		o := d.offer
		what := "a file"
		size := humanBytes(o.Size)
		if o.Directory {
			what = "a folder"
			size = fmt.Sprintf("%d files, %s", o.Files, size)
		}
		b.WriteString(st.Header.Render("Incoming "+strings.TrimPrefix(what, "a ")) + "\n\n")
		b.WriteString(wrap(fmt.Sprintf("Your peer offers %s: %s (%s).", what, st.Code.Render(strconv.Quote(clean(o.Name))), size), width))
		b.WriteString("\n" + wrap("It will be saved in "+clean(o.SaveDir)+".", width))
		if q.folder != nil {
			b.WriteString("\n\n" + q.folder.View() + "\n" + st.Key.Render("enter") + " accept   " + st.Key.Render("esc") + " back")
		} else {
			b.WriteString("\n\n" + wrap(st.Key.Render("y")+" accept   "+st.Key.Render("f")+" accept into another folder   "+st.Key.Render("n")+" refuse", width))
		}
	}
	if q.folder == nil {
		b.WriteString("\n" + wrap(st.Key.Render("D")+" no to all waiting   "+st.Key.Render("B")+" no to all, now and later", width))
	}
	if n := len(q.items) - 1; n > 0 {
		b.WriteString("\n" + st.Dim.Render(fmt.Sprintf("%d more waiting", n)))
	}
	return b.String()
}
