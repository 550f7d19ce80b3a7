package transit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gander-pair/gander/wormhole"
)

// A connection through a transit relay starts, before the caller's own
// handshake, with
//
//	→ "please relay <token hex> for side <side>\n"   ← "ok\n"
//
// the relay answering once the peer's connection with the same token (and
// another side) has arrived. The token comes from the key both peers
// share, so the relay pairs their connections and nobody else's.

// RelayHandshake is the line a side sends the relay: the token is
// DeriveKey(key, "transit_relay_token", 32), key being the Dilation key or
// classic Transit's transit key.
func RelayHandshake(key []byte, side string) string {
	token := wormhole.DeriveKey(key, "transit_relay_token", 32)
	return "please relay " + hex.EncodeToString(token) + " for side " + side + "\n"
}

// ErrNoPartnerAtRelay is a connection that waited RelayPartnerTimeout at the
// transit relay without the peer's connection arriving.
var ErrNoPartnerAtRelay = errors.New("transit: the peer did not reach the relay")

// UnexpectedRelayAnswer is a relay (or whatever listens there) answering
// something other than "ok\n".
type UnexpectedRelayAnswer struct {
	Got []byte // what it said, up to and including the first wrong byte
}

func (e *UnexpectedRelayAnswer) Error() string {
	return fmt.Sprintf("transit relay: expected %q, got %q", relayOK, e.Got)
}

const relayOK = "ok\n"

// AwaitRelay sends line (RelayHandshake's) on conn and waits for the
// relay's "ok\n", read through r (the caller's buffered reader of conn, so
// that what follows "ok\n" stays there for its own handshake). atRelay, if
// not nil, is called once the line is sent. The wait is bounded by the
// lesser of timeout and RelayPartnerTimeout, and fails with
// ErrNoPartnerAtRelay when that runs out, with *UnexpectedRelayAnswer at
// the first wrong byte, or with conn's I/O error. It leaves conn's
// deadline set; the caller sets its own next.
func AwaitRelay(conn net.Conn, r io.ByteReader, line string, atRelay func(), timeout time.Duration) error {
	conn.SetDeadline(time.Now().Add(min(timeout, RelayPartnerTimeout)))
	if _, err := io.WriteString(conn, line); err != nil {
		return err
	}
	if atRelay != nil {
		atRelay()
	}
	// Byte by byte, so that a relay speaking something else is dropped at
	// its first wrong byte.
	for i := 0; i < len(relayOK); i++ {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ErrNoPartnerAtRelay
			}
			return err
		}
		if c != relayOK[i] {
			return &UnexpectedRelayAnswer{Got: append([]byte(relayOK[:i]), c)}
		}
	}
	return nil
}
