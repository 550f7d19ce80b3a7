// Package plain is gander's plain-lines frontend (--no-tui, and the
// default when stdout is not a terminal): one line per event, for a
// person or a script, with what the peer supplied sanitised. Requests of
// the peer's that nothing allows are refused (the session does not ask).
package plain

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gander-pair/gander/internal/sanitize"
	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/codes"
)

// Run runs the session with its events as plain lines on stdout, after
// allocating a code (unless cfg has one) and offering the files in sends
// once the peer is there. It returns how the session ended: nil after a
// happy end or when it closed before the peer came (the user stopped
// waiting); an error wrapping ErrOutputFailed if stdout could not be
// written.
func Run(ctx context.Context, cfg session.Config, sends []string, stdout io.Writer) error {
	out := newBatchedWriter(stdout, outputDelay)
	sessionCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	out.failed = func(err error) { stop(fmt.Errorf("%w: %w", ErrOutputFailed, err)) }
	s, err := session.Start(sessionCtx, cfg)
	if err != nil {
		return err
	}
	if cfg.Code == "" {
		s.Do(session.AllocateCode{})
	}
	if len(sends) > 0 {
		s.Do(session.SendFiles{Paths: sends})
	}
	var link linkLines
	for ev := range s.Events() {
		printEvent(out, &link, ev)
		if answer := refusal(ev); answer != nil {
			s.Do(answer)
		}
		if _, ok := ev.(session.CodeReady); ok && len(sends) > 0 {
			// --send speaks gander's own file transfer: a `wormhole
			// receive` on the other end would wait as silently as we do.
			fmt.Fprintln(out, sendsHint)
		}
	}
	err = sessionResult(s.Wait())
	out.Flush()
	if cause := context.Cause(sessionCtx); err == nil && ctx.Err() == nil && errors.Is(cause, ErrOutputFailed) {
		err = cause
	}
	return err
}

// refusal is the answer to a question of the peer's that plain lines
// cannot put to anyone (nil if ev is none): no, at once, rather than a
// peer kept waiting for the question's timeout.
func refusal(ev session.Event) session.Command {
	if e, ok := ev.(session.ShareKeyboardRequested); ok {
		return session.Answer{ID: e.ID, Decision: session.Deny}
	}
	return nil
}

// fromApp is how to do what plain lines cannot.
const fromApp = "from the app (gander without --no-tui)"

// sendsHint follows the code when --send is given.
const sendsHint = "The files go to a gander peer (gander CODE). For `wormhole receive` or another wormhole client, " +
	"send with `gander send PATH` instead."

// ErrOutputFailed ends a --no-tui session whose output cannot be written.
var ErrOutputFailed = errors.New("writing the output failed")

// sessionResult is the error a session's end makes gander exit with:
// none for a session that closed before the peer came (the user stopped
// waiting).
func sessionResult(err error) error {
	if errors.Is(err, session.ErrLonely) {
		return nil
	}
	return err
}

// printEvent writes one line for a person or a script. Peer-supplied text
// is sanitised. link is what was told of the connection so far.
func printEvent(w io.Writer, link *linkLines, ev session.Event) {
	clean := func(s string) string { return sanitize.Text(s, false) }
	switch e := ev.(type) {
	case session.Welcome:
		if e.MOTD != "" {
			fmt.Fprintf(w, "Server says: %s\n", sanitize.Text(e.MOTD, true))
		}
	case session.CodeReady:
		fmt.Fprintf(w, "Wormhole code is: %s\n", e.Code)
	case session.PeerConnected:
		fmt.Fprintf(w, "Peer connected. Verifier: %s\n", formatVerifier(e.Verifier))
		if e.Peer.Kind == session.PeerGander && len(e.Verifier) >= verifierWords {
			// What the peer's gander shows too: quicker to compare aloud.
			fmt.Fprintf(w, "Verifier words (both gander): %s\n", strings.Join(codes.Words(e.Verifier[:verifierWords]), " "))
		}
	case session.NobodyOnCode:
		fmt.Fprintf(w, "Nobody is on nameplate %s yet; waiting for the peer (a code works only once: if it was used already, ask for a new one)\n",
			clean(e.Nameplate))
	case session.ServerStatus:
		link.printServer(w, e)
	case session.OfferFailed:
		fmt.Fprintf(w, "Could not offer %s: %s\n", clean(e.Service), clean(e.Err.Error()))
	case session.PeerClosing:
		fmt.Fprintln(w, "The peer closed the session.")
	case session.CommandFailed:
		fmt.Fprintf(w, "Failed: %s\n", clean(e.Err.Error()))
	case session.Closed:
		switch {
		case errors.Is(e.Err, session.ErrLonely):
			fmt.Fprintln(w, "Closed before the peer connected.")
		case e.Err != nil && !errors.Is(e.Err, session.ErrCloseTimeout): // that one closed happy
			fmt.Fprintf(w, "Closed: %s\n", clean(e.Err.Error()))
		}
	case session.LinkStatus:
		link.print(w, e)
	case session.ServiceListening:
		fmt.Fprintf(w, "Listening for %s on %s\n", clean(e.Service), e.Addr)
	case session.AwaitingConnect:
		fmt.Fprintf(w, "The peer listens for %s; its connections come to %s\n", clean(e.Service), e.Addr)
	case session.ForwardRefused:
		who := "Refused"
		if e.ByPeer {
			who = "The peer refused"
		}
		fmt.Fprintf(w, "%s %s: %s\n", who, clean(e.Service), clean(e.Reason))
	case session.ForwardWithdrawn:
		if e.Ours {
			fmt.Fprintf(w, "The peer stopped listening for %s\n", clean(e.Service))
		} else {
			fmt.Fprintf(w, "The peer withdrew %s; no longer listening for it\n", clean(e.Service))
		}
	case session.ConnectionOpened:
		fmt.Fprintf(w, "Connection %d for %s opened\n", e.ID, clean(e.Service))
	case session.ConnectionClosed:
		if e.Err != nil {
			fmt.Fprintf(w, "Connection %d for %s closed: %s\n", e.ID, clean(e.Service), clean(e.Err.Error()))
		} else {
			fmt.Fprintf(w, "Connection %d for %s closed (%d bytes from the peer, %d to it)\n", e.ID, clean(e.Service), e.BytesIn, e.BytesOut)
		}
	case session.ForwardProblem:
		fmt.Fprintf(w, "Problem: %s\n", clean(e.Err.Error()))
	case session.ShareOffered, session.ShareGuestJoined, session.ShareGuestLeft, session.ShareKeyboardRequested,
		session.ShareTyping, session.ShareInputDropped, session.ShareEnded:
		printShare(w, ev)
	case session.TransferOffered:
		fmt.Fprintf(w, "The peer offers %s (%d bytes)\n", clean(e.Name), e.Size)
	case session.TransferAccepted:
		limits := "no size limit"
		if e.MaxSize > 0 {
			limits = "up to " + session.FormatSize(e.MaxSize) + " an offer"
		}
		if e.SessionLeft >= 0 {
			limits += ", " + session.FormatSize(e.SessionLeft) + " more this session"
		}
		fmt.Fprintf(w, "Receiving %s (%d bytes) into %s (%s)\n", clean(e.Name), e.Size, clean(e.Dir), limits)
	case session.TransfersRefused:
		if e.Unread {
			fmt.Fprintf(w, "Refused %d offers of the peer unread: %s\n", e.Count, clean(e.Reason))
		} else {
			fmt.Fprintf(w, "%d more offers of the peer ended: %s\n", e.Count, clean(e.Reason))
		}
	case session.PartialsRemoved:
		if len(e.Removed) > 0 {
			fmt.Fprintf(w, "Removed %d partial files left in %s by an earlier gander: %s\n",
				len(e.Removed), clean(e.Dir), clean(strings.Join(e.Removed, ", ")))
		}
		if len(e.Unknown) > 0 {
			fmt.Fprintf(w, "Left %d partial files of an older gander in %s (it may still run): %s\n",
				len(e.Unknown), clean(e.Dir), clean(strings.Join(e.Unknown, ", ")))
		}
	case session.TransferProgress:
		if e.Waiting {
			fmt.Fprintf(w, "%s: offered (%d bytes), waiting for the peer to accept\n", clean(e.Name), e.Size)
		} else if e.Size > 0 {
			fmt.Fprintf(w, "%s: %d of %d bytes (%d%%)\n", clean(e.Name), e.Done, e.Size, e.Done*100/e.Size)
		}
	case session.TransferFinished:
		switch {
		case e.Err != nil:
			// Who refused is news; a limit's refusal keeps the line
			// scripts know ("Transfer of X failed: … too large: …").
			if kind, refused := session.Refusal(e.Err); refused &&
				(kind == session.RefusalByUser || kind == session.RefusalPolicy || kind == session.RefusalTimeout) {
				fmt.Fprintln(w, capitalize(e.Summary()))
			} else {
				fmt.Fprintf(w, "Transfer of %s failed: %s\n", clean(e.Name), clean(e.Err.Error()))
			}
		case e.Outgoing:
			fmt.Fprintf(w, "Sent %s\n", clean(e.Name))
		default:
			fmt.Fprintf(w, "Received %s as %s\n", clean(e.Name), clean(e.SavedAs))
		}
	}
}

// printShare tells the shared terminal's events: plain lines cannot
// show one, nor answer the peer's request for the keyboard (Run refuses
// it), so they say what happened and where to act.
func printShare(w io.Writer, ev session.Event) {
	clean := func(s string) string { return sanitize.Text(s, false) }
	because := func(err error) string {
		if err == nil {
			return ""
		}
		return ": " + clean(err.Error())
	}
	switch e := ev.(type) {
	case session.ShareOffered:
		if e.Outgoing {
			fmt.Fprintf(w, "Sharing a terminal (%s) with the peer, read-only\n", clean(e.Command))
		} else {
			fmt.Fprintf(w, "The peer shares a terminal (%s); plain lines cannot show it: watch it %s\n", clean(e.Command), fromApp)
		}
	case session.ShareGuestJoined:
		fmt.Fprintln(w, "The peer is watching your shared terminal")
	case session.ShareGuestLeft:
		fmt.Fprintf(w, "The peer stopped watching your shared terminal%s\n", because(e.Err))
	case session.ShareKeyboardRequested:
		fmt.Fprintf(w, "The peer asked for the keyboard of your shared terminal: refused (plain lines cannot ask you; answer %s)\n", fromApp)
	case session.ShareTyping:
		switch {
		case e.Outgoing && e.Allowed:
			fmt.Fprintln(w, "The peer may now type into your shared terminal")
		case e.Outgoing:
			fmt.Fprintln(w, "The peer may no longer type into your shared terminal")
		case e.Allowed:
			fmt.Fprintln(w, "The peer lets you type into its shared terminal")
		case e.Reason != "":
			fmt.Fprintf(w, "You may not type into the peer's shared terminal: %s\n", clean(e.Reason))
		default:
			fmt.Fprintln(w, "You may not type into the peer's shared terminal")
		}
	case session.ShareInputDropped:
		why := "it may not type"
		if e.Reason != "" {
			why = clean(e.Reason)
		}
		fmt.Fprintf(w, "Dropped %d bytes the peer typed into your shared terminal (%s)\n", e.Bytes, why)
	case session.ShareEnded:
		if e.Outgoing {
			fmt.Fprintf(w, "Your shared terminal ended%s\n", because(e.Err))
		} else {
			fmt.Fprintf(w, "The peer's shared terminal ended%s\n", because(e.Err))
		}
	}
}

// linkLines tells the connection's story in plain lines: an outage once,
// however many statuses its attempts bring, then how it ended.
type linkLines struct {
	connected  bool // "Connected" or "Reconnected" was told for generation
	generation int
	lost       bool // "Connection lost" was told, and nothing since
	attempts   int  // failed attempts in the outage, as last reported

	// The mailbox server's connection, told the same way: lost once,
	// back once.
	serverLost     bool
	serverAttempts int
}

// verifierWords is how many of the verifier's bytes are also given in
// PGP words, as the app shows them.
const verifierWords = 8

func (l *linkLines) printServer(w io.Writer, st session.ServerStatus) {
	switch {
	case !st.Connected && !l.serverLost:
		fmt.Fprintln(w, "Mailbox server connection lost; reconnecting (the link to the peer, if up, goes on)...")
		l.serverLost = true
	case !st.Connected:
		l.serverAttempts = st.Attempts
	case l.serverLost:
		fmt.Fprintf(w, "Mailbox server reconnected%s\n", outageSummary(st.Outage, l.serverAttempts))
		l.serverLost, l.serverAttempts = false, 0
	}
}

func (l *linkLines) print(w io.Writer, st session.LinkStatus) {
	switch st.State {
	case session.LinkConnected:
		if l.connected && st.Generation == l.generation {
			return // the same connection, reported again
		}
		via := sanitize.Line(st.Via)
		if l.lost || st.Outage > 0 {
			fmt.Fprintf(w, "Reconnected via %s%s\n", via, outageSummary(st.Outage, max(st.Attempts, l.attempts)))
		} else {
			fmt.Fprintf(w, "Connected via %s (generation %d)\n", via, st.Generation)
		}
		*l = linkLines{connected: true, generation: st.Generation}
	case session.LinkReconnecting:
		if !l.lost {
			fmt.Fprintln(w, "Connection lost; reconnecting...")
		}
		l.connected, l.lost, l.attempts = false, true, st.Attempts
	case session.LinkStopped:
		// Stopping because gander closes the connection is no news.
		if st.Err != nil && !errors.Is(st.Err, session.ErrLinkClosed) {
			fmt.Fprintf(w, "Connection stopped: %s\n", sanitize.Text(st.Err.Error(), false))
		}
		*l = linkLines{}
	}
}

// outageSummary is " after 3.2s (7 attempts)", leaving out what is not
// known.
func outageSummary(outage time.Duration, attempts int) string {
	var s string
	if outage > 0 {
		switch {
		case outage < time.Second:
			outage = outage.Round(time.Millisecond)
		case outage < time.Minute:
			outage = outage.Round(100 * time.Millisecond)
		default:
			outage = outage.Round(time.Second)
		}
		s = " after " + outage.String()
	}
	switch {
	case attempts == 1:
		s += " (1 attempt)"
	case attempts > 1:
		s += fmt.Sprintf(" (%d attempts)", attempts)
	}
	return s
}

// formatVerifier groups the verifier's hex in fours, as fowl shows it.
func formatVerifier(v []byte) string {
	h := hex.EncodeToString(v)
	var groups []string
	for len(h) > 4 {
		groups = append(groups, h[:4])
		h = h[4:]
	}
	return strings.Join(append(groups, h), " ")
}

// capitalize starts a sentence with a capital letter.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
