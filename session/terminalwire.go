package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The shared terminal's control messages between gander peers (on the
// terminalShareProto subchannel): each is a JSON object after a 4-byte
// big-endian length, at most maxControlFrame bytes. The host's first is
// its offer; after it the host sends "typing" (who may type) and the
// guest "ask-keyboard". Kinds this side does not know are skipped, so a
// later version can add some.

// maxControlFrame bounds one control message, either way.
const maxControlFrame = 4 << 10

// Control message kinds.
const (
	kindOffer       = "offer"        // host → guest, first: the share exists
	kindTyping      = "typing"       // host → guest: Allowed, and Reason when not
	kindAskKeyboard = "ask-keyboard" // guest → host
)

// controlMsg is one control message.
type controlMsg struct {
	Kind    string `json:"kind"`
	Command string `json:"command,omitempty"` // offer: what is shared, for people
	Allowed bool   `json:"allowed,omitempty"` // typing
	Reason  string `json:"reason,omitempty"`  // typing: why not
}

// errBadControl: the peer sent a control message this side cannot read.
var errBadControl = errors.New("a bad shared-terminal control message")

// encodeControl frames m.
func encodeControl(m controlMsg) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(body) > maxControlFrame {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", errBadControl, len(body), maxControlFrame)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...), nil
}

// readControl reads one message; io.EOF at a clean end between them.
func readControl(r io.Reader) (controlMsg, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return controlMsg{}, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > maxControlFrame {
		return controlMsg{}, fmt.Errorf("%w: a frame of %d bytes (at most %d)", errBadControl, n, maxControlFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return controlMsg{}, err
	}
	var m controlMsg
	if err := json.Unmarshal(body, &m); err != nil {
		return controlMsg{}, fmt.Errorf("%w: %v", errBadControl, err)
	}
	return m, nil
}
