package tui

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/session"
)

// staleAfter: a rate not refreshed for this long is shown as nothing
// moving (the session sends Traffic only while bytes move).
const staleAfter = 3 * session.TrafficInterval

// rate turns successive byte counts into a smoothed bytes per second
// (format.go: the raw rate of one Traffic interval jumps).
type rate = smoothRate

// withdrawnState is a row's state once the peer ended it.
const withdrawnState = "withdrawn by the peer"

// forwardRow is one service.
type forwardRow struct {
	name string
	// ours: our service, offered to the peer (--remote); otherwise the
	// peer's, that we listen for (--local).
	ours        bool
	addr        string // where we listen, or where our daemon is
	state       string // what is going on, when it is not simply working
	bad         bool   // state is a failure
	open, total int64
	in, out     int64
	rate        rate
}

// openConnection is one open connection, listed under its service's row
// when that row is selected.
type openConnection struct {
	stats session.ConnectionStats
	rate  rate
}

// maxConnectionLines bounds the connections listed under a service.
const maxConnectionLines = 4

// forwardKind is a choice in the add form.
type forwardKind int

const (
	offerMine   forwardKind = iota // session.AddRemote
	acceptPeers                    // session.AddLocal
)

// addForm is the "add a forward" form.
type addForm struct {
	kind  forwardKind
	input textinput.Model
	err   string
}

// forwardsPane is the table of services, with its add form and remove
// confirmation.
type forwardsPane struct {
	*common
	rows     []*forwardRow // in order of appearance
	conns    map[int64]*openConnection
	sel      int
	focused  bool // the selection shows, with its connections
	form     *addForm
	removing string // the service whose removal awaits y/n
	// formWidth is the inner width of the form's modal.
	formWidth int
}

// update takes the forward and traffic events; on the main screen, a
// adds a forward, ↑/↓ select one and d removes it.
func (p *forwardsPane) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventMsg:
		if notice, bad := p.handle(msg.ev, p.now()); notice != "" {
			p.say(notice, bad)
		}
		if _, ok := msg.ev.(session.Traffic); ok {
			return p.stale.start()
		}
	case staleCheckMsg:
		if p.expireRates(p.now()) {
			return p.stale.start()
		}
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, p.keys.AddForward):
			return p.openForm()
		case key.Matches(msg, p.keys.Up):
			p.move(-1)
		case key.Matches(msg, p.keys.Down):
			p.move(1)
		case key.Matches(msg, p.keys.RemoveForward):
			p.confirmRemove()
		}
	}
	return nil
}

func (p *forwardsPane) helpKeys() []key.Binding {
	if len(p.rows) > 0 {
		return []key.Binding{p.keys.RemoveForward}
	}
	return nil
}

func (p *forwardsPane) setSize(int, int)    {}
func (p *forwardsPane) setFocus(list focus) { p.focused = list == focusForwards }

// forwardForm is the forwards pane's add form and removal confirmation,
// drawn over the screen while one is open.
type forwardForm struct{ p *forwardsPane }

// update takes the keys and pastes while the form or the confirmation is
// open; quitting, or the end of the session, closes them.
func (f *forwardForm) update(msg tea.Msg) tea.Cmd {
	switch msg.(type) {
	case closingMsg, endedMsg:
		f.p.form, f.p.removing = nil, ""
	case tea.KeyPressMsg, tea.PasteMsg:
		return f.p.handleKey(msg)
	}
	return nil
}

func (f *forwardForm) view(width, _ int) string {
	if f.p.removing != "" {
		return f.p.confirmView(width)
	}
	return f.p.formView(width)
}

func (f *forwardForm) helpKeys() []key.Binding {
	k := f.p.keys
	if f.p.removing != "" {
		return []key.Binding{k.Yes, k.No}
	}
	return []key.Binding{k.AddSubmit, k.SwitchKind, k.Cancel}
}

func (f *forwardForm) setSize(width, _ int) { f.p.formWidth = width }
func (f *forwardForm) setFocus(focus)       {}

func (p *forwardsPane) empty() bool { return len(p.rows) == 0 }

// capturing says whether the form or the confirmation has the keyboard.
func (p *forwardsPane) capturing() bool { return p.form != nil || p.removing != "" }

func (p *forwardsPane) row(name string) *forwardRow {
	for _, r := range p.rows {
		if r.name == name {
			return r
		}
	}
	return nil
}

// rowFor returns name's row, adding it if need be.
func (p *forwardsPane) rowFor(name string, ours bool) *forwardRow {
	if r := p.row(name); r != nil {
		return r
	}
	r := &forwardRow{name: name, ours: ours}
	p.rows = append(p.rows, r)
	return r
}

func (p *forwardsPane) remove(name string) {
	for i, r := range p.rows {
		if r.name == name {
			p.rows = append(p.rows[:i], p.rows[i+1:]...)
			break
		}
	}
	p.sel = max(0, min(p.sel, len(p.rows)-1))
	if p.removing == name {
		p.removing = ""
	}
}

// handle applies a forwarder or traffic event; it returns a notice for
// the status line, if the event deserves one.
func (p *forwardsPane) handle(ev session.Event, now time.Time) (notice string, bad bool) {
	switch e := ev.(type) {
	case session.ServiceListening:
		r := p.rowFor(e.Service, false)
		r.ours, r.addr, r.state, r.bad = false, e.Addr, "", false
	case session.AwaitingConnect:
		r := p.rowFor(e.Service, true)
		r.ours, r.addr, r.state, r.bad = true, e.Addr, "", false
	case session.ForwardRefused:
		if e.ByPeer {
			// The OfferFailed that follows says it on the status line.
			if r := p.row(e.Service); r != nil {
				r.state, r.bad = peerRefusal(e.Reason).row(), true
			}
			return "", false
		}
		return ourRefusal(e.Service, e.Reason), true
	case session.ConnectionOpened:
		if r := p.row(e.Service); r != nil {
			r.open++
			r.total++
		}
		if p.conns == nil {
			p.conns = map[int64]*openConnection{}
		}
		p.conns[e.ID] = &openConnection{stats: session.ConnectionStats{ID: e.ID, Service: e.Service, Incoming: e.Incoming, Since: now}}
	case session.ConnectionClosed:
		if r := p.row(e.Service); r != nil && r.open > 0 {
			r.open--
		}
		delete(p.conns, e.ID)
		if e.Err != nil {
			return fmt.Sprintf("a connection for %q ended: %s", clean(e.Service), errText(e.Err)), true
		}
	case session.ForwardRemoved:
		p.remove(e.Service)
		return fmt.Sprintf("removed %q", clean(e.Service)), false
	case session.ForwardWithdrawn:
		// The row stays, saying so, until d clears it (or, for a
		// service we accept, the peer offers it again).
		r := p.rowFor(e.Service, e.Ours)
		r.state, r.bad = withdrawnState, false
		if e.Ours {
			return fmt.Sprintf("your peer stopped listening for %q", clean(e.Service)), false
		}
		r.addr = ""
		return fmt.Sprintf("your peer withdrew %q: its port here is closed", clean(e.Service)), false
	case session.OfferFailed:
		r := p.rowFor(e.Service, true)
		if denied := (*session.DeniedError)(nil); errors.As(e.Err, &denied) {
			why := peerRefusal(denied.Reason)
			r.state, r.bad = why.row(), true
			return why.notice(e.Service), true
		}
		r.state, r.bad = "failed: "+errText(e.Err), true
		return fmt.Sprintf("could not offer %q: %s", clean(e.Service), errText(e.Err)), true
	case session.Traffic:
		for _, s := range e.Services {
			r := p.rowFor(s.Service, s.Offered)
			r.ours, r.open, r.total, r.in, r.out = s.Offered, s.Open, s.Total, s.BytesIn, s.BytesOut
			if s.Addr != "" {
				r.addr = s.Addr
			}
			r.rate.sample(s.BytesIn+s.BytesOut, now)
		}
		p.updateConnections(e.Connections, now)
	}
	return "", false
}

// updateConnections takes the open connections' counters: those listed
// are open, and only those.
func (p *forwardsPane) updateConnections(open []session.ConnectionStats, now time.Time) {
	listed := make(map[int64]*openConnection, len(open))
	for _, s := range open {
		c := p.conns[s.ID]
		if c == nil {
			c = &openConnection{}
		}
		c.stats = s
		c.rate.sample(s.BytesIn+s.BytesOut, now)
		listed[s.ID] = c
	}
	p.conns = listed
}

// expireRates zeroes rates that stopped; it reports whether any still move.
func (p *forwardsPane) expireRates(now time.Time) (moving bool) {
	for _, r := range p.rows {
		if r.rate.expire(now) {
			moving = true
		}
	}
	for _, c := range p.conns {
		if c.rate.expire(now) {
			moving = true
		}
	}
	return moving
}

// connectionLines list the open connections of service, oldest first, in
// at most max lines.
func (p *forwardsPane) connectionLines(st *Styles, service string, max int, now time.Time) []string {
	var open []*openConnection
	for _, c := range p.conns {
		if c.stats.Service == service {
			open = append(open, c)
		}
	}
	if len(open) == 0 || max < 1 {
		return nil
	}
	slices.SortFunc(open, func(a, b *openConnection) int { return cmp.Compare(a.stats.ID, b.stats.ID) })
	shown := open
	if len(open) > max {
		shown = open[:max-1]
	}
	var lines []string
	for _, c := range shown {
		who := "from here"
		if c.stats.Incoming {
			who = "from the peer"
		}
		lines = append(lines, st.Dim.Render(fmt.Sprintf("    #%d %s, %s: %s in, %s out, %s",
			c.stats.ID, who, humanDuration(now.Sub(c.stats.Since)),
			humanBytes(c.stats.BytesIn), humanBytes(c.stats.BytesOut), humanRate(c.rate.perSec))))
	}
	if len(shown) < len(open) {
		lines = append(lines, st.Dim.Render(fmt.Sprintf("    … %d more connections", len(open)-len(shown))))
	}
	return lines
}

func (p *forwardsPane) move(delta int) {
	p.sel = max(0, min(p.sel+delta, len(p.rows)-1))
}

// openForm opens the add form.
func (p *forwardsPane) openForm() tea.Cmd {
	in := textinput.New()
	in.Prompt = "> "
	in.SetStyles(p.styles.Input)
	in.CharLimit = 200
	in.SetWidth(max(10, p.formWidth-3)) // the prompt and the cursor
	p.form = &addForm{input: in}
	p.form.setPlaceholder()
	return p.form.input.Focus()
}

func (f *addForm) setPlaceholder() {
	if f.kind == offerMine {
		f.input.Placeholder = "web:8000"
	} else {
		f.input.Placeholder = "web:8080"
	}
}

// parse checks the spec typed with the parser of the form's kind.
func (f *addForm) parse() (session.Command, error) {
	spec := strings.TrimSpace(f.input.Value())
	if f.kind == offerMine {
		r, err := session.ParseRemote(spec)
		return session.AddRemote{Remote: r}, err
	}
	l, err := session.ParseLocal(spec)
	return session.AddLocal{Local: l}, err
}

// confirmRemove asks before removing the selected service.
func (p *forwardsPane) confirmRemove() {
	if p.sel < len(p.rows) {
		p.removing = p.rows[p.sel].name
	}
}

// handleKey handles a key while the form or the confirmation is open.
func (p *forwardsPane) handleKey(msg tea.Msg) tea.Cmd {
	k, isKey := msg.(tea.KeyPressMsg)
	if p.removing != "" {
		if !isKey {
			return nil
		}
		name := p.removing
		switch {
		case key.Matches(k, p.keys.Yes):
			p.removing = ""
			if r := p.row(name); r != nil {
				r.state, r.bad = "removing…", false
			}
			return p.send(session.Remove{Service: name})
		case key.Matches(k, p.keys.No):
			p.removing = ""
		}
		return nil
	}
	f := p.form
	if isKey {
		switch {
		case key.Matches(k, p.keys.Cancel):
			p.form = nil
			return nil
		case key.Matches(k, p.keys.SwitchKind):
			f.kind = 1 - f.kind
			f.setPlaceholder()
			f.validate()
			return nil
		case key.Matches(k, p.keys.Submit):
			cmd, err := f.parse()
			if err != nil {
				f.err = errText(err)
				return nil
			}
			name, ours := "", f.kind == offerMine
			switch c := cmd.(type) {
			case session.AddRemote:
				name = c.Remote.Name
			case session.AddLocal:
				name = c.Local.Name
			}
			if p.row(name) != nil {
				f.err = fmt.Sprintf("there is already a service named %q", clean(name))
				return nil
			}
			r := p.rowFor(name, ours)
			if ours {
				r.state = "offered; waiting for the peer"
			} else {
				r.state = "accepted; waiting for the peer's offer"
			}
			p.form = nil
			return p.send(cmd)
		}
	}
	var cmd tea.Cmd
	f.input, cmd = f.input.Update(msg)
	f.validate()
	return cmd
}

// validate shows the parser's complaint as the spec is typed.
func (f *addForm) validate() {
	f.err = ""
	if strings.TrimSpace(f.input.Value()) == "" {
		return
	}
	if _, err := f.parse(); err != nil {
		f.err = errText(err)
	}
}

// formView is the add form's content, for a modal of the given inner width.
func (p *forwardsPane) formView(width int) string {
	st, f := p.styles, p.form
	choice := func(k forwardKind, text string) string {
		if f.kind == k {
			return st.Selected.Render("(•) " + text)
		}
		return "( ) " + text
	}
	var b strings.Builder
	b.WriteString(st.Header.Render("Add a forward") + "\n\n")
	b.WriteString(fit(choice(offerMine, "offer a service of mine to the peer"), width) + "\n")
	b.WriteString(fit(choice(acceptPeers, "let the peer offer me a service"), width) + "\n\n")
	if f.kind == offerMine {
		b.WriteString(wrap(st.Dim.Render("NAME[:PORT][:listen=PORT][:address=ADDR]: your service runs here on PORT; the peer gets a port for it."), width))
	} else {
		b.WriteString(wrap(st.Dim.Render("NAME[:PORT][:bind=ADDR][:remote-connect=PORT]: the peer runs it; you get a local PORT for it."), width))
	}
	b.WriteString("\n" + f.input.View())
	if f.err != "" {
		b.WriteString("\n" + wrap(st.Bad.Render("✗ ")+f.err, width))
	}
	return b.String()
}

// confirmView asks about removing a service.
func (p *forwardsPane) confirmView(width int) string {
	st := p.styles
	return wrap(fmt.Sprintf("Remove the forward %q?", clean(p.removing)), width) + "\n" +
		wrap(st.Dim.Render("Connections already open carry on."), width) + "\n\n" +
		st.Key.Render("y") + " remove   " + st.Key.Render("n") + " keep"
}

// column is one column of the table.
type column struct {
	title string
	width int
	right bool // numbers are right-aligned
}

// view draws the table in at most height lines; with the focus, the
// selection marker and the selected service's open connections.
func (p *forwardsPane) view(width, height int) string {
	st, focused, now := p.styles, p.focused, p.now()
	title := st.Title.Render("Forwards")
	if len(p.rows) == 0 {
		return title + "\n" + fit(st.Dim.Render("None yet: press ")+st.Key.Render("a")+st.Dim.Render(" to add one."), width)
	}
	type cells struct {
		name, dir, addr, conns, in, out, rate, state string
	}
	var all []cells
	nameW, addrW := len("service"), len("local address")
	for _, r := range p.rows {
		c := cells{name: clean(r.name), dir: "← peer", addr: clean(r.addr), state: r.state}
		if r.ours {
			c.dir = "→ peer"
		}
		if c.addr == "" {
			c.addr = "–"
		}
		c.conns = strconv.FormatInt(r.open, 10) + "/" + strconv.FormatInt(r.total, 10)
		c.in, c.out, c.rate = humanBytes(r.in), humanBytes(r.out), humanRate(r.rate.perSec)
		nameW, addrW = max(nameW, ansi.StringWidth(c.name)), max(addrW, ansi.StringWidth(c.addr))
		all = append(all, c)
	}
	nameW, addrW = min(nameW, 16), min(addrW, 21)
	cols := []column{
		{"service", nameW, false}, {"dir", 6, false}, {"local address", addrW, false},
		{"conns", 5, true}, {"in", 6, true}, {"out", 6, true}, {"rate", 8, true},
	}
	total := func() int {
		n := 1 // the marker, less the last column's gap
		for _, c := range cols {
			n += c.width + 1
		}
		return n
	}
	// Narrow terminals: squeeze long names a little, drop the rate, then
	// the byte counts, then squeeze addresses and names.
	if over := total() - width; over > 0 {
		cols[0].width = max(min(cols[0].width, 8), cols[0].width-over)
	}
	for total() > width && len(cols) > 4 {
		cols = cols[:len(cols)-1]
	}
	if over := total() - width; over > 0 {
		cols[2].width = max(9, cols[2].width-over)
	}
	if over := total() - width; over > 0 {
		cols[0].width = max(6, cols[0].width-over)
	}
	// line lays out the first n columns.
	line := func(values []string, n int) string {
		parts := make([]string, n)
		for i, c := range cols[:n] {
			v := fit(values[i], c.width)
			if c.right {
				v = strings.Repeat(" ", c.width-ansi.StringWidth(v)) + v
			} else {
				v = pad(v, c.width)
			}
			parts[i] = v
		}
		return strings.Join(parts, " ")
	}
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	lines := []string{title, "  " + st.Column.Render(line(titles, len(cols)))}

	var detail []string
	if focused && p.sel < len(p.rows) {
		// The connections take the room the rows leave, up to a limit.
		detail = p.connectionLines(st, p.rows[p.sel].name, min(maxConnectionLines, height-2-len(p.rows)), now)
	}
	// Keep the selection in view when the rows do not fit.
	room := max(1, height-2-len(detail))
	first, shown := 0, len(all)
	if len(all) > room {
		shown = max(1, room-1) // and a line saying how many more
		first = max(0, min(p.sel-shown/2, len(all)-shown))
	}
	for i := first; i < first+shown; i++ {
		c := all[i]
		values := []string{c.name, c.dir, c.addr, c.conns, c.in, c.out, c.rate}
		text := line(values, len(cols))
		if c.state != "" {
			// The state takes the place of the counters.
			state := st.Dim.Render(c.state)
			if p.rows[i].bad {
				state = st.Bad.Render(c.state)
			}
			text = line(values, 3) + " " + state
		}
		marker := "  "
		if focused && i == p.sel {
			marker = "› "
			text = st.Selected.Render(text)
		}
		lines = append(lines, fit(marker+text, width))
		if focused && i == p.sel {
			for _, d := range detail {
				lines = append(lines, fit(d, width))
			}
		}
	}
	if shown < len(all) {
		lines = append(lines, st.Dim.Render(fmt.Sprintf("  … %d more (↑/↓)", len(all)-shown)))
	}
	return strings.Join(lines, "\n")
}

// refusal is why the peer refused an offer of ours, for people: a person
// refusing, its rules refusing and anything else are different things to
// say (issue 14).
type refusal struct {
	noAnswer bool   // nobody there answered
	why      string // after "refused": "" for a person's plain no
}

// peerRefusal reads the peer's reason: gander's and fowl's own words are
// recognized, anything else is shown as it came (cleaned).
func peerRefusal(reason string) refusal {
	asked, takes, port := session.PortMismatch(reason)
	switch {
	case session.RefusedByUser(reason), reason == "Refused by the peer":
		return refusal{}
	case reason == session.ErrDeniedRecently.Error():
		return refusal{why: "it was refused a moment ago"}
	case reason == session.ErrDeniedForSession.Error():
		return refusal{why: "it refuses everything this session"}
	case reason == session.ErrNoAnswer.Error():
		return refusal{noAnswer: true}
	case session.NotPermitted(reason):
		return refusal{why: "not permitted by its rules"}
	case port:
		return refusal{why: fmt.Sprintf("it takes only port %d, not %d", takes, asked)}
	case reason == session.ErrTooManyAsks.Error():
		return refusal{why: "too many requests wait for its answer"}
	}
	return refusal{why: clean(reason)}
}

// row is the refusal in a row of the table, beside the service's name.
func (r refusal) row() string {
	switch {
	case r.noAnswer:
		return "your peer did not answer"
	case r.why == "":
		return "your peer refused"
	}
	return "your peer refused: " + r.why
}

// notice is the refusal on the status line.
func (r refusal) notice(service string) string {
	switch {
	case r.noAnswer:
		return fmt.Sprintf("your peer did not answer about %q", clean(service))
	case r.why == "":
		return fmt.Sprintf("your peer refused %q", clean(service))
	}
	return fmt.Sprintf("your peer refused %q: %s", clean(service), r.why)
}

// ourRefusal is the notice for a request of the peer's we refused.
func ourRefusal(service, reason string) string {
	name := clean(service)
	switch {
	case session.RefusedByUser(reason):
		return fmt.Sprintf("you refused %q", name)
	case session.NotPermitted(reason):
		return fmt.Sprintf("refused your peer's %q: nothing here accepts it (a adds it)", name)
	}
	return fmt.Sprintf("refused your peer's %q: %s", name, clean(reason))
}
