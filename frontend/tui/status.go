package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/internal/sanitize"
	"github.com/gander-pair/gander/session"
)

// statusLine is the bottom of the screen: the last notice, then the
// mailbox server, the peer and the path to it.
type statusLine struct {
	*common
	welcomed bool   // the mailbox server said hello
	peer     string // "" until connected, then "gander" or "fowl"
	link     *session.LinkStatus
	// reconnectingSince is when the current reconnection began.
	reconnectingSince time.Time
	// server is the mailbox connection's latest change; nil while it
	// has stayed up since the welcome. serverLostAt is when this line
	// saw it go, should the status carry no Since.
	server       *session.ServerStatus
	serverLostAt time.Time

	notice    string
	noticeBad bool
	// noticeKind says what replaces the notice besides time: the
	// verifier's goes once it is confirmed (verifierConfirmed), a held
	// one ("closing…") only with the next notice.
	noticeKind        noticeKind
	verifierConfirmed func() bool
	// noticeSeq numbers the notices; expirySeq is the last one whose
	// expiry timer is on its way (see expiry).
	noticeSeq, expirySeq int
	// reconnectGen numbers the reconnections, for their ticks.
	reconnectGen int
}

// noticeKind is how a notice ends.
type noticeKind int

const (
	noticeExpires  noticeKind = iota // after noticeFor
	noticeVerifier                   // once the verifier is confirmed
	noticeHeld                       // when the next one comes
)

// noticeFor is how long a notice stays: long enough to read twice, short
// enough that the line does not tell of what is long over.
const noticeFor = 10 * time.Second

// noticeExpiredMsg ends notice number seq, if it is still shown.
type noticeExpiredMsg struct{ seq int }

// update takes the session events that are notices, and the connection's
// state; it redraws "reconnecting (12 s)" every second while
// reconnecting.
func (s *statusLine) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case reconnectTickMsg:
		if msg.gen == s.reconnectGen && (s.reconnecting() || s.serverDown()) {
			return s.reconnectTick()
		}
	case noticeExpiredMsg:
		if msg.seq == s.noticeSeq {
			s.notice = ""
		}
	case eventMsg:
		return s.handle(msg.ev)
	}
	return nil
}

func (s *statusLine) handle(ev session.Event) tea.Cmd {
	switch e := ev.(type) {
	case session.Welcome:
		s.welcomed = true
		if motd := strings.Join(strings.Fields(sanitize.Text(e.MOTD, true)), " "); motd != "" {
			s.say("server says: "+motd, false)
		}
	case session.PeerConnected:
		s.setPeer(e.Peer)
		s.say("your peer is connected: compare the verifier", false)
		s.noticeKind = noticeVerifier
	case session.ServerStatus:
		return s.setServer(e, s.now())
	case session.TransfersRefused:
		if e.Unread {
			s.say(fmt.Sprintf("refused %d offers of your peer unread: %s", e.Count, clean(e.Reason)), true)
		} else {
			s.say(fmt.Sprintf("%d more offers of your peer ended: %s", e.Count, clean(e.Reason)), true)
		}
	case session.PartialsRemoved:
		if n := len(e.Removed); n > 0 {
			s.say(fmt.Sprintf("removed %d partial files an earlier gander left in %s", n, clean(e.Dir)), false)
		}
	case session.CommandFailed:
		s.say(errText(e.Err), true)
	case session.ForwardProblem:
		s.say(errText(e.Err), true)
	case session.PeerClosing:
		s.say("your peer closed the session", false)
	case session.LinkStatus:
		if s.setLink(e, s.now()) {
			s.reconnectGen++
			return s.reconnectTick()
		}
		if e.State == session.LinkStopped && e.Err != nil {
			s.say("connection stopped: "+errText(e.Err), true)
		}
	}
	return nil
}

// setServer records a session.ServerStatus: lost, the line shows since
// when it reconnects (ticking); back, a notice says after how long.
func (s *statusLine) setServer(st session.ServerStatus, now time.Time) tea.Cmd {
	was := s.serverDown()
	s.server = &st
	switch {
	case st.Connected && was:
		s.say("the mailbox server is back after "+outageText(st.Outage), false)
	case !st.Connected && !was:
		s.serverLostAt = now
		s.reconnectGen++
		return s.reconnectTick()
	}
	return nil
}

// serverDown says whether the mailbox server's connection is lost now.
func (s *statusLine) serverDown() bool { return s.server != nil && !s.server.Connected }

// serverText is "reconnecting (12 s) · 3 attempts · refused", briefly
// "reconnecting (12 s)".
func (s *statusLine) serverText(now time.Time, d detail) string {
	since := s.server.Since
	if since.IsZero() {
		since = s.serverLostAt
	}
	parts := []string{"reconnecting (" + humanDuration(max(0, now.Sub(since))) + ")"}
	if d == full {
		if n := s.server.Attempts; n > 0 {
			parts = append(parts, attemptsText(n))
		}
		if why := failureReason(s.server.LastFailure); why != "" {
			parts = append(parts, why)
		}
	}
	return strings.Join(parts, " · ")
}

func (s *statusLine) reconnectTick() tea.Cmd {
	gen := s.reconnectGen
	return tea.Tick(reconnectingTick, func(time.Time) tea.Msg { return reconnectTickMsg{gen} })
}

func (s *statusLine) helpKeys() []key.Binding { return nil }
func (s *statusLine) setSize(int, int)        {}
func (s *statusLine) setFocus(focus)          {}

// setPeer records what the peer is, from what it advertised.
func (s *statusLine) setPeer(p session.Peer) {
	s.peer = "fowl"
	if p.Kind == session.PeerGander {
		s.peer = "gander"
	}
}

// setLink records a session.LinkStatus and reports whether a reconnection
// just began. Connected again after a loss, it says so in the notice:
// the status line alone would only show the path, as if nothing happened.
func (s *statusLine) setLink(st session.LinkStatus, now time.Time) (started bool) {
	prev := s.link
	was := s.reconnecting()
	s.link = &st
	if s.reconnecting() && !was {
		s.reconnectingSince = now
		return true
	}
	back := st.State == session.LinkConnected && (prev == nil || prev.State != session.LinkConnected)
	if back && (was || st.Outage > 0) {
		outage := st.Outage
		if outage == 0 && was {
			outage = now.Sub(s.outageStart(prev))
		}
		attempts := st.Attempts
		if was {
			attempts = max(attempts, prev.Attempts)
		}
		s.say(reconnectedNotice(st.Relayed, outage, attempts), false)
	}
	return false
}

// outageStart is when the connection described by st (reconnecting) was
// lost: dilation's Since, or failing that when this line first saw it go.
func (s *statusLine) outageStart(st *session.LinkStatus) time.Time {
	if !st.Since.IsZero() {
		return st.Since
	}
	return s.reconnectingSince
}

// reconnectedNotice is "reconnected via relay after 12 s (7 attempts)".
func reconnectedNotice(relayed bool, outage time.Duration, attempts int) string {
	text := "reconnected via direct"
	if relayed {
		text = "reconnected via relay"
	}
	if outage > 0 {
		text += " after " + outageText(outage)
	}
	if attempts > 0 {
		text += " (" + attemptsText(attempts) + ")"
	}
	return text
}

// outageText is an outage's length: tenths of a second while short, when
// they tell a quick recovery from a slow one.
func outageText(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return humanDuration(d)
}

func attemptsText(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// maxReasonWidth bounds, in cells, an error's own text shown as a reason:
// the status line has room for a few words only.
const maxReasonWidth = 40

// failureReason says in a word or two why a connection attempt failed or
// the connection stopped; errors of no known kind show their own text,
// sanitised (they may quote the network) and cut short.
func failureReason(err error) string {
	var netErr net.Error
	var protocolErr *session.ProtocolError
	var attempt *session.AttemptError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, session.ErrNoPartnerAtRelay):
		return "peer not at the relay"
	case errors.As(err, &attempt):
		where := "direct "
		if attempt.Relay {
			where = "relay "
		}
		return fit(where+failureReason(attempt.Err), maxReasonWidth)
	case errors.Is(err, session.ErrLinkClosed):
		return "closed"
	case errors.Is(err, session.ErrPeerCannotDilate):
		return "the peer cannot dilate"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED):
		return "dropped"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.As(err, &protocolErr):
		return fit(clean(protocolErr.Layer)+" protocol error", maxReasonWidth)
	}
	return fit(errText(err), maxReasonWidth)
}

func (s *statusLine) reconnecting() bool {
	return s.link != nil && s.link.State == session.LinkReconnecting
}

// say shows a notice until noticeFor has passed or another replaces it.
func (s *statusLine) say(text string, bad bool) {
	s.notice, s.noticeBad, s.noticeKind = text, bad, noticeExpires
	s.noticeSeq++
}

// hold shows a notice until another replaces it: it tells of a state
// that lasts ("closing…").
func (s *statusLine) hold(text string) {
	s.say(text, false)
	s.noticeKind = noticeHeld
}

// expiry is the timer that ends the notice said last, if it has none on
// its way yet; the root asks after every message, so that no pane that
// says something has to.
func (s *statusLine) expiry() tea.Cmd {
	if s.notice == "" || s.noticeKind != noticeExpires || s.expirySeq == s.noticeSeq {
		return nil
	}
	s.expirySeq = s.noticeSeq
	seq := s.noticeSeq
	return tea.Tick(noticeFor, func(time.Time) tea.Msg { return noticeExpiredMsg{seq} })
}

// shownNotice is the notice to draw: the verifier's goes once it is
// confirmed, whatever the timer.
func (s *statusLine) shownNotice() string {
	if s.noticeKind == noticeVerifier && s.verifierConfirmed != nil && s.verifierConfirmed() {
		return ""
	}
	return s.notice
}

// detail is how much the status line tells, from all of it down to what
// fits a narrow terminal.
type detail int

const (
	full    detail = iota // words, and why reconnection attempts fail
	compact               // brief labels, still with why
	brief                 // brief labels, no why
)

// view is two lines: the notice, and the state of the connections.
func (s *statusLine) view(width, _ int) string {
	st, now := s.styles, s.now()
	var notice string
	if text := s.shownNotice(); text != "" {
		if s.noticeBad {
			notice = fit(st.Bad.Render("✗ ")+text, width)
		} else {
			notice = fit(st.Dim.Render("• ")+text, width)
		}
	}
	var line string
	for d := full; d <= brief; d++ {
		line = s.parts(st, now, d)
		if ansi.StringWidth(line) <= width {
			break
		}
	}
	return notice + "\n" + fit(st.Status.Render(line), width)
}

// parts is the status line, in words or, for narrow terminals, briefly.
func (s *statusLine) parts(st *Styles, now time.Time, d detail) string {
	server := "server: " + st.Warn.Render("connecting…")
	switch {
	case s.serverDown():
		server = "server: " + st.Warn.Render(s.serverText(now, d))
	case s.welcomed:
		server = "server: " + st.Good.Render("connected")
	}
	peer := "peer: " + st.Good.Render(s.peer)
	if s.peer == "" {
		peer = "peer: waiting"
	}
	if d > full {
		server, peer = "server "+st.Warn.Render("…"), st.Good.Render(s.peer)
		switch {
		case s.serverDown():
			server = "server " + st.Warn.Render(s.serverText(now, d))
		case s.welcomed:
			server = "server " + st.Good.Render("✓")
		}
		if s.peer == "" {
			peer = "waiting for the peer"
		}
	}
	parts := []string{server, peer}
	if s.link != nil {
		link := s.linkText(st, now, d)
		if d > full {
			link = strings.TrimPrefix(link, "path: ")
		}
		parts = append(parts, link)
	}
	return strings.Join(parts, st.Dim.Render(" · "))
}

func (s *statusLine) linkText(st *Styles, now time.Time, d detail) string {
	switch s.link.State {
	case session.LinkConnected:
		path := "direct"
		if s.link.Relayed {
			path = "relay"
		}
		if via := clean(s.link.Via); via != "" && !strings.HasPrefix(via, path) {
			path += " " + via
		} else if via != "" {
			path = via
		}
		return "path: " + st.Good.Render(path)
	case session.LinkReconnecting:
		return st.Warn.Render(s.reconnectingText(now, d))
	case session.LinkStopped:
		why := ""
		if err := s.link.Err; err != nil && !errors.Is(err, session.ErrLinkClosed) {
			why = ": " + failureReason(err)
		}
		return "path: " + st.Bad.Render("stopped"+why)
	}
	return "path: " + s.link.State.String() + "…"
}

// reconnectingText is "reconnecting (12 s) · 7 attempts · refused", or
// briefly "reconnecting (12 s, 7 attempts)".
func (s *statusLine) reconnectingText(now time.Time, d detail) string {
	since := humanDuration(max(0, now.Sub(s.outageStart(s.link))))
	attempts := s.link.Attempts
	if d == brief {
		if attempts == 0 {
			return "reconnecting (" + since + ")"
		}
		return "reconnecting (" + since + ", " + attemptsText(attempts) + ")"
	}
	parts := []string{"reconnecting (" + since + ")"}
	if attempts > 0 {
		parts = append(parts, attemptsText(attempts))
	}
	if why := failureReason(s.link.LastFailure); why != "" {
		parts = append(parts, why)
	}
	return strings.Join(parts, " · ")
}
