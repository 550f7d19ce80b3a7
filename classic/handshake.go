package classic

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gander-pair/gander/transit"
	"github.com/gander-pair/gander/wormhole"
)

// transitKeyPurpose is the purpose the transit key is derived for. It names
// the file-transfer app id even when another is used (the reference's
// BUG339_APPID), so it is a constant, not AppID+"...".
const transitKeyPurpose = "lothar.com/wormhole/text-or-file-xfer/transit-key"

// HandshakeTimeout bounds a dialled connection's Transit handshake (after
// the relay's "ok"); an inbound one has transit.InboundHandshakeTimeout.
const HandshakeTimeout = 30 * time.Second

// ErrBadHandshake is a connection whose peer did not say what the transit
// key makes it say: someone else's connection, or a wrong key.
var ErrBadHandshake = errors.New("transit: the peer's handshake did not match")

// ErrNevermind is the sender picking another connection.
var ErrNevermind = errors.New("transit: the sender chose another connection")

// keys are what one side of a transfer derives from the transit key.
type keys struct {
	transit  []byte
	ours     string // the handshake line we send
	theirs   string // the one we expect
	sealKey  [32]byte
	openKey  [32]byte
	isSender bool
}

func deriveKeys(transitKey []byte, isSender bool) keys {
	line := func(who string) string {
		return "transit " + who + " " + hex.EncodeToString(wormhole.DeriveKey(transitKey, "transit_"+who, 32)) + " ready\n\n"
	}
	senderKey := [32]byte(wormhole.DeriveKey(transitKey, "transit_record_sender_key", 32))
	receiverKey := [32]byte(wormhole.DeriveKey(transitKey, "transit_record_receiver_key", 32))
	k := keys{transit: transitKey, isSender: isSender}
	if isSender {
		k.ours, k.theirs, k.sealKey, k.openKey = line("sender"), line("receiver"), senderKey, receiverKey
	} else {
		k.ours, k.theirs, k.sealKey, k.openKey = line("receiver"), line("sender"), receiverKey, senderKey
	}
	return k
}

// handshake is the race's Handshake: the relay's line if dialling a relay,
// then both handshake lines, then (receiver) the sender's "go".
func (k keys) handshake(conn net.Conn, a transit.Attempt) (*recordConn, error) {
	timeout := HandshakeTimeout
	if a.Inbound {
		timeout = transit.InboundHandshakeTimeout
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	if a.RelayLine != "" {
		if err := transit.AwaitRelay(conn, br, a.RelayLine, a.AtRelay, timeout); err != nil {
			return nil, err
		}
	}
	conn.SetDeadline(time.Now().Add(timeout))
	if k.isSender {
		if _, err := io.WriteString(conn, k.ours); err != nil {
			return nil, err
		}
		if err := expect(br, k.theirs, ErrBadHandshake); err != nil {
			return nil, err
		}
	} else {
		// The receiver answers the sender's line, never sends first:
		// every sender sends its line unasked (wormhole-william's own
		// receiver waits for it too), and wormhole-william's sender
		// needs the wait. Its relay connection's watchdog goroutine
		// (waitForRelayPeer) closes the connection if it sees the race
		// over before it has seen the relay's "ok" handled; if the
		// receiver's line is already in the socket with the "ok", the
		// sender never blocks, the watchdog has not run yet when the
		// race ends, and its select closes the winning connection half
		// the time ("use of closed network connection"). Answering
		// makes the sender block one round trip, and the watchdog
		// stands down first.
		if err := expect(br, k.theirs, ErrBadHandshake); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(conn, k.ours); err != nil {
			return nil, err
		}
		if err := expect(br, "go\n", ErrNevermind); err != nil {
			return nil, err
		}
	}
	conn.SetDeadline(time.Time{})
	return &recordConn{conn: conn, r: br, s: sealer{key: k.sealKey}, o: opener{key: k.openKey}, via: a.Via}, nil
}

// expect reads len(want) bytes and fails with mismatch at the first that
// differs.
func expect(r *bufio.Reader, want string, mismatch error) error {
	got := make([]byte, 0, len(want))
	for i := 0; i < len(want); i++ {
		c, err := r.ReadByte()
		if err != nil {
			return err
		}
		got = append(got, c)
		if c != want[i] {
			return fmt.Errorf("%w (got %q)", mismatch, bytes.ToValidUTF8(got, []byte("?")))
		}
	}
	return nil
}

// selectConn is the sender's Select: the connection it keeps hears "go".
func selectConn(c *recordConn) error {
	_, err := io.WriteString(c.conn, "go\n")
	return err
}

// discardSender tells a connection the sender does not keep, as the
// reference does, and closes it.
func discardSender(c *recordConn) {
	if tc, ok := c.conn.(net.Conn); ok {
		tc.SetWriteDeadline(time.Now().Add(time.Second))
	}
	io.WriteString(c.conn, "nevermind\n")
	c.conn.Close()
}

func discardReceiver(c *recordConn) { c.conn.Close() }
