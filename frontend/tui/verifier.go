package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/codes"
)

// verifierPane shows the verifier once the peer is connected: both sides
// see the same hex if nobody is in the middle, so the two people read it
// to each other and one presses v.
type verifierPane struct {
	*common
	// waiting is how many of the peer's questions are held until the
	// verifier is confirmed.
	waiting   func() int
	verifier  []byte
	confirmed bool
	// words is the verifier's first verifierWords bytes in PGP words,
	// shown when the peer is gander (which shows the same); fowl shows
	// only the hex.
	words []string
}

// verifierWords is how many of the verifier's bytes are spelled in words:
// 64 bits, read in a few seconds, beside the full hex.
const verifierWords = 8

func (p *verifierPane) known() bool { return p.verifier != nil }

// update takes the verifier from PeerConnected; v marks it compared (or
// not, pressed again).
func (p *verifierPane) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventMsg:
		if e, ok := msg.ev.(session.PeerConnected); ok {
			p.verifier = e.Verifier
			p.words = nil
			if e.Peer.Kind == session.PeerGander && len(e.Verifier) >= verifierWords {
				p.words = codes.Words(e.Verifier[:verifierWords])
			}
		}
	case tea.KeyPressMsg:
		if key.Matches(msg, p.keys.Confirm) && p.known() {
			p.confirmed = !p.confirmed
		}
	}
	return nil
}

func (p *verifierPane) helpKeys() []key.Binding {
	if p.known() && !p.confirmed {
		return []key.Binding{p.keys.Confirm}
	}
	return nil
}

func (p *verifierPane) setSize(int, int) {}
func (p *verifierPane) setFocus(focus)   {}

func (p *verifierPane) view(width, _ int) string {
	st, waiting := p.styles, p.waiting()
	perLine := 8 // 32 bytes: two lines of eight groups, 39 cells each
	if width < 43 {
		perLine = 4
	}
	if p.confirmed {
		// Once compared, one line is enough: the room goes to the forwards.
		line := verifierLines(p.verifier, 4)[0] + " …"
		return fit(st.Title.Render("Verifier")+" "+st.Good.Render("✓ confirmed")+st.Dim.Render(" · "+line), width)
	}
	var b strings.Builder
	b.WriteString(st.Title.Render("Verifier") + fit(st.Dim.Render(" · read it aloud: your peer must see the same"), width-8) + "\n")
	for _, line := range verifierLines(p.verifier, perLine) {
		b.WriteString("  " + st.Hex.Render(line) + "\n")
	}
	if len(p.words) > 0 {
		// One line if it fits, else two of half the words each.
		label := "  " + st.Dim.Render("words ")
		lines := []string{strings.Join(p.words, " ")}
		if lipgloss.Width(label+lines[0]) > width {
			half := len(p.words) / 2
			lines = []string{strings.Join(p.words[:half], " "), strings.Join(p.words[half:], " ")}
		}
		for i, line := range lines {
			if i > 0 {
				label = "        "
			}
			b.WriteString(fit(label+st.Hex.Render(line), width) + "\n")
		}
	}
	b.WriteString(wrap("  not yet confirmed — compare with your peer, then press "+st.Key.Render("v"), width))
	if waiting > 0 {
		what := "something"
		if waiting > 1 {
			what = fmt.Sprintf("%d things", waiting)
		}
		b.WriteString("\n" + wrap("  "+st.Warn.Render("your peer asks for "+what+": confirm the verifier first"), width))
	}
	return b.String()
}
