package tui

import (
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
)

// What quitting would stop, asked about first (q, ctrl+c) and told to the
// person whose peer quit: each side counts from its own screen, so
// nothing new crosses the wire and a fowl peer sees fowl's goodbye only.

// losses is what would stop with the session: the forwards that are up
// and the transfers under way.
type losses struct {
	forwards  int
	transfers []transferLoss
}

// transferLoss is one transfer under way: its name, sanitised, and how
// far it is ("at 26%"; empty while the size is unknown).
type transferLoss struct{ name, at string }

func (l losses) none() bool { return l.forwards == 0 && len(l.transfers) == 0 }

// lossesNow counts them on the screen as it is.
func (m *Model) lossesNow() losses {
	var l losses
	for _, r := range m.forwards.rows {
		if r.addr != "" && !r.bad {
			l.forwards++
		}
	}
	for _, r := range m.transfers.rows {
		if r.finished || r.err != "" {
			continue
		}
		loss := transferLoss{name: clean(r.name)}
		if r.size > 0 {
			loss.at = fmt.Sprintf("at %d%%", percent(r.done, r.size))
		}
		l.transfers = append(l.transfers, loss)
	}
	return l
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// transfersText is "notes.txt at 26%" (verb between the name and how
// far: "notes.txt stopped at 26%"), or "3 transfers" when there are more
// than two.
func (l losses) transfersText(verb string) string {
	if len(l.transfers) > 2 {
		return strings.TrimSpace(plural(len(l.transfers), "transfer", "transfers") + " " + verb)
	}
	var each []string
	for _, t := range l.transfers {
		each = append(each, strings.Join(strings.Fields(t.name+" "+verb+" "+t.at), " "))
	}
	return strings.Join(each, " and ")
}

// question is what quitting asks: "quit? 2 forwards and notes.txt at
// 26% would stop (y/N)".
func (l losses) question() string {
	var parts []string
	if l.forwards > 0 {
		parts = append(parts, plural(l.forwards, "forward", "forwards"))
	}
	if len(l.transfers) > 0 {
		parts = append(parts, l.transfersText(""))
	}
	return "quit? " + strings.Join(parts, " and ") + " would stop (y/N)"
}

// peerClosedText is what the peer's quitting stopped here: "2 forwards
// closed, notes.txt stopped at 26%".
func (l losses) peerClosedText() string {
	var parts []string
	if l.forwards > 0 {
		parts = append(parts, plural(l.forwards, "forward", "forwards")+" closed")
	}
	if len(l.transfers) > 0 {
		parts = append(parts, l.transfersText("stopped"))
	}
	return strings.Join(parts, ", ")
}

// Keys of the quit question.
var (
	keyQuitYes = key.NewBinding(key.WithKeys("y", "Y", "ctrl+c"), key.WithHelp("y", "quit"))
	keyQuitNo  = key.NewBinding(key.WithKeys("n", "N", "esc", "enter"), key.WithHelp("any other key", "stay"))
)

// newCodeError is ErrNewCode with what RunPairing needs to know: whether
// the session that ended had a peer (the files given to send went to it,
// so they are not sent again).
type newCodeError struct{ peerCame bool }

func (e *newCodeError) Error() string        { return ErrNewCode.Error() }
func (e *newCodeError) Is(target error) bool { return target == ErrNewCode }

// peerCame reports whether err is a new code asked for after a session
// with a peer.
func peerCame(err error) bool {
	var nc *newCodeError
	return errors.As(err, &nc) && nc.peerCame
}
