package dilation

import (
	"log/slog"
	"net"

	"github.com/gander-pair/gander/transit"
)

// startConnector starts one generation's connection race (transit.Race)
// with Dilation's handshake, and returns the hints to send the peer: our
// direct addresses (unless noListen) and our relays. Every connection gets
// the L2 handshake; the Leader selects the first viable one with its KCM,
// the Follower waits for the Leader's KCM on each. The winner reaches
// events as transit.Selected[*link], with generation as its ID.
func startConnector(generation int, leader bool, key []byte, side string,
	relays []transit.Hint, noListen bool, log *slog.Logger, events chan<- transit.Event) (*transit.Race[*link], []transit.Hint) {
	return transit.StartRace(transit.RaceConfig[*link]{
		ID: generation, Key: key, Side: side, Relays: relays, NoListen: noListen, Log: log, Events: events,
		Handshake: func(conn net.Conn, a transit.Attempt) (*link, error) {
			// An inbound connection is anyone's: a shorter deadline.
			timeout := handshakeTimeout
			if a.Inbound {
				timeout = transit.InboundHandshakeTimeout
			}
			l, err := handshakeVia(conn, leader, key, a.RelayLine, a.AtRelay, timeout)
			if err == nil && !leader {
				err = l.awaitSelection()
			}
			if err != nil {
				return nil, err
			}
			l.description, l.relayed = a.Via, a.RelayLine != ""
			return l, nil
		},
		Select: func(l *link) error {
			if !leader {
				return nil // the Leader's KCM selected it already
			}
			return l.writeRecord(kcmRecord{})
		},
		Discard: func(l *link) { l.close() },
	})
}
