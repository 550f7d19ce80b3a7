package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/session"
)

// transferRow is one file transfer, either way.
type transferRow struct {
	id               int64
	name             string // sanitised when drawn
	outgoing         bool
	size, done       int64
	files, filesDone int
	rate             smoothRate
	state            string // "waiting for the first bytes…", "cancelling…"
	waiting          bool   // our offer waits for the peer to accept it
	finished         bool
	savedAs          string
	err              string // sanitised: how it ended, when not well
}

// transfersPane lists transfers with progress bars. It is hidden while
// there are none. Outgoing transfers appear here as soon as the session
// reports their progress, however they were started.
type transfersPane struct {
	*common
	rows    []*transferRow
	sel     int
	focused bool // the selection shows
}

// update takes the transfer events; with the focus, ↑/↓ select a
// transfer and x cancels it.
func (p *transfersPane) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventMsg:
		switch msg.ev.(type) {
		case session.TransferProgress:
			p.handle(msg.ev, p.now())
			return p.stale.start()
		case session.TransferFinished:
			if notice, bad := p.handle(msg.ev, p.now()); notice != "" {
				p.say(notice, bad)
			}
		case session.TransferFolderFailed:
			p.handle(msg.ev, p.now())
		}
	case staleCheckMsg:
		if p.expireRates(p.now()) {
			return p.stale.start()
		}
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, p.keys.Up):
			p.move(-1)
		case key.Matches(msg, p.keys.Down):
			p.move(1)
		case key.Matches(msg, p.keys.CancelTransfer):
			return p.cancel()
		case key.Matches(msg, p.keys.ClearTransfers):
			p.clearFinished()
		}
	}
	return nil
}

func (p *transfersPane) helpKeys() []key.Binding {
	keys := []key.Binding{p.keys.CancelTransfer}
	if p.finishedRows() > 0 {
		keys = append(keys, p.keys.ClearTransfers)
	}
	return keys
}

func (p *transfersPane) finishedRows() int {
	n := 0
	for _, r := range p.rows {
		if r.finished {
			n++
		}
	}
	return n
}

// clearFinished drops the transfers that ended, well or not; the
// selection stays on the same transfer if it is still there.
func (p *transfersPane) clearFinished() {
	var selected *transferRow
	if p.sel < len(p.rows) {
		selected = p.rows[p.sel]
	}
	kept := p.rows[:0]
	p.sel = 0
	for _, r := range p.rows {
		if r.finished {
			continue
		}
		if r == selected {
			p.sel = len(kept)
		}
		kept = append(kept, r)
	}
	clear(p.rows[len(kept):])
	p.rows = kept
}

func (p *transfersPane) setSize(int, int)    {}
func (p *transfersPane) setFocus(list focus) { p.focused = list == focusTransfers }

func (p *transfersPane) empty() bool { return len(p.rows) == 0 }

func (p *transfersPane) rowFor(id int64) *transferRow {
	for _, r := range p.rows {
		if r.id == id {
			return r
		}
	}
	r := &transferRow{id: id}
	p.rows = append(p.rows, r)
	return r
}

// accept shows an offer the user accepted until its bytes start moving.
func (p *transfersPane) accept(a accepted) {
	r := p.rowFor(a.offer.ID)
	r.name, r.size, r.files = a.offer.Name, a.offer.Size, a.offer.Files
	r.state = "accepted; waiting for the first bytes…"
}

// handle applies a transfer event; it returns a notice for the status
// line, if the event deserves one.
func (p *transfersPane) handle(ev session.Event, now time.Time) (notice string, bad bool) {
	switch e := ev.(type) {
	case session.TransferProgress:
		r := p.rowFor(e.ID)
		r.name, r.outgoing, r.waiting = e.Name, e.Outgoing, e.Waiting
		r.size, r.done, r.files, r.filesDone = e.Size, e.Done, e.Files, e.FilesDone
		if !e.Waiting {
			r.rate.sample(e.Done, now)
		}
		if r.state != "cancelling…" {
			r.state = ""
		}
	case session.TransferFolderFailed:
		// The dialog asks again; the row waits for the next answer.
		p.drop(e.Offer.ID)
	case session.TransferFinished:
		r := p.rowFor(e.ID)
		r.name, r.outgoing, r.finished, r.savedAs = e.Name, e.Outgoing, true, e.SavedAs
		r.state, r.waiting, r.rate = "", false, smoothRate{}
		summary := e.Summary()
		if e.Err != nil {
			r.err = summary
			kind, refused := session.Refusal(e.Err)
			return summary, !refused || kind != session.RefusalByUser || e.Outgoing
		}
		return summary, false
	}
	return "", false
}

// drop removes a transfer's row.
func (p *transfersPane) drop(id int64) {
	for i, r := range p.rows {
		if r.id == id {
			p.rows = append(p.rows[:i], p.rows[i+1:]...)
			p.sel = max(0, min(p.sel, len(p.rows)-1))
			return
		}
	}
}

func (p *transfersPane) expireRates(now time.Time) (moving bool) {
	for _, r := range p.rows {
		if !r.finished && r.rate.expire(now) {
			moving = true
		}
	}
	return moving
}

func (p *transfersPane) move(delta int) {
	p.sel = max(0, min(p.sel+delta, len(p.rows)-1))
}

// cancel stops the selected transfer, if it is still going.
func (p *transfersPane) cancel() tea.Cmd {
	if p.sel >= len(p.rows) || p.rows[p.sel].finished {
		return nil
	}
	r := p.rows[p.sel]
	r.state = "cancelling…"
	return p.send(session.CancelTransfer{ID: r.id})
}

// view draws the transfers in at most height lines.
func (p *transfersPane) view(width, height int) string {
	st, focused := p.styles, p.focused
	blocks := make([][]string, len(p.rows))
	for i, r := range p.rows {
		marker := "  "
		if focused && i == p.sel {
			marker = "› "
		}
		blocks[i] = r.view(st, width, marker)
	}
	// Show as many blocks as fit, keeping the selection in view.
	first, used := 0, 1
	for i := p.sel; i >= 0 && used+len(blocks[i]) <= height; i-- {
		first, used = i, used+len(blocks[i])
	}
	lines := []string{st.Title.Render("Transfers")}
	for i := first; i < len(blocks); i++ {
		if len(lines)+len(blocks[i]) > height {
			lines = append(lines, st.Dim.Render(fmt.Sprintf("  … %d more", len(blocks)-i)))
			break
		}
		lines = append(lines, blocks[i]...)
	}
	return strings.Join(lines, "\n")
}

func (r *transferRow) view(st *Styles, width int, marker string) []string {
	name := clean(r.name)
	if r.finished {
		var text string
		switch {
		case r.err != "":
			text = st.Bad.Render("✗ " + r.err)
		case r.outgoing:
			text = st.Good.Render("✓ sent ") + name
		case r.savedAs != "":
			text = st.Good.Render("✓ received ") + name + st.Dim.Render(" — saved as ") + clean(r.savedAs)
		default:
			text = st.Good.Render("✓ received ") + name
		}
		return []string{fit(marker+text, width)}
	}
	arrow := "↓ receiving "
	if r.outgoing {
		arrow = "↑ sending "
	}
	amount := humanBytes(r.done) + " of " + humanBytes(r.size)
	switch {
	case r.waiting && r.files > 1:
		amount = fmt.Sprintf("%s, %d files", humanBytes(r.size), r.files)
	case r.waiting:
		amount = humanBytes(r.size)
	case r.files > 1:
		amount += fmt.Sprintf(", file %d of %d", min(r.filesDone+1, r.files), r.files)
	}
	head := fit(marker+arrow+name, max(10, width-ansi.StringWidth(amount)-2))
	head = pad(head, width-ansi.StringWidth(amount)) + amount
	if marker != "  " {
		head = st.Selected.Render(head)
	}
	if r.waiting && r.state == "" {
		// Nothing moves until the peer says yes: no bar to fill.
		return []string{fit(head, width), fit("    "+st.Dim.Render("waiting for the peer to accept"), width)}
	}
	var detail string
	if r.state != "" {
		detail = st.Dim.Render(r.state)
	} else {
		detail = fmt.Sprintf("%3d%%", percent(r.done, r.size))
		if r.rate.perSec > 0 {
			detail += "  " + humanRate(r.rate.perSec)
			if left, ok := r.rate.eta(r.size - r.done); ok {
				detail += ", " + humanDuration(left) + " left"
			}
		}
	}
	barWidth := max(10, min(40, width-4-ansi.StringWidth(detail)-2))
	return []string{fit(head, width), fit("    "+bar(st, r.done, r.size, barWidth)+"  "+detail, width)}
}

func percent(done, size int64) int64 {
	if size <= 0 {
		return 100
	}
	return min(100, done*100/size)
}

// bar draws a progress bar of width cells; the two glyphs differ, so it
// reads without colour.
func bar(st *Styles, done, size int64, width int) string {
	filled := int(percent(done, size) * int64(width) / 100)
	return st.Bar.Render(strings.Repeat("█", filled)) + st.BarEmpty.Render(strings.Repeat("░", width-filled))
}
