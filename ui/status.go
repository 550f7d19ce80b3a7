package ui

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
)

// statusLine is the bottom of the screen: the last notice, then the
// mailbox server, the peer and the path to it.
type statusLine struct {
	welcomed bool   // the mailbox server said hello
	peer     string // "" until connected, then "gander" or "fowl"
	link     *dilation.Status
	// reconnectingSince is when the current reconnection began.
	reconnectingSince time.Time

	notice    string
	noticeBad bool
}

// setPeer records what the peer is, from its app_versions.
func (s *statusLine) setPeer(versions json.RawMessage) {
	s.peer = "fowl"
	if forwards.PeerIsGander(versions) {
		s.peer = "gander"
	}
}

// setLink records a dilation.Status and reports whether a reconnection
// just began.
func (s *statusLine) setLink(st dilation.Status, now time.Time) (started bool) {
	was := s.reconnecting()
	s.link = &st
	if s.reconnecting() && !was {
		s.reconnectingSince = now
		return true
	}
	return false
}

func (s *statusLine) reconnecting() bool {
	return s.link != nil && s.link.State == dilation.Reconnecting
}

func (s *statusLine) say(text string, bad bool) { s.notice, s.noticeBad = text, bad }

func (s *statusLine) view(st *Styles, width int, now time.Time) string {
	var notice string
	if s.notice != "" {
		if s.noticeBad {
			notice = fit(st.Bad.Render("✗ ")+s.notice, width)
		} else {
			notice = fit(st.Dim.Render("• ")+s.notice, width)
		}
	}
	line := s.parts(st, now, false)
	if ansi.StringWidth(line) > width {
		line = s.parts(st, now, true)
	}
	return notice + "\n" + fit(st.Status.Render(line), width)
}

// parts is the status line, in words or, for narrow terminals, briefly.
func (s *statusLine) parts(st *Styles, now time.Time, brief bool) string {
	server := "server: " + st.Warn.Render("connecting…")
	if s.welcomed {
		server = "server: " + st.Good.Render("connected")
	}
	peer := "peer: " + st.Good.Render(s.peer)
	if s.peer == "" {
		peer = "peer: waiting"
	}
	if brief {
		server, peer = "server "+st.Warn.Render("…"), st.Good.Render(s.peer)
		if s.welcomed {
			server = "server " + st.Good.Render("✓")
		}
		if s.peer == "" {
			peer = "waiting for the peer"
		}
	}
	parts := []string{server, peer}
	if s.link != nil {
		link := s.linkText(st, now)
		if brief {
			link = strings.TrimPrefix(link, "path: ")
		}
		parts = append(parts, link)
	}
	return strings.Join(parts, st.Dim.Render(" · "))
}

func (s *statusLine) linkText(st *Styles, now time.Time) string {
	switch s.link.State {
	case dilation.Connected:
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
	case dilation.Reconnecting:
		return st.Warn.Render("reconnecting (" + humanDuration(now.Sub(s.reconnectingSince)) + ")")
	case dilation.Stopped:
		return "path: " + st.Bad.Render("stopped")
	}
	return "path: " + s.link.State.String() + "…"
}
