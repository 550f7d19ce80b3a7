// Package terminal shares a terminal: a host runs a shell (or a command)
// in a PTY and shows it to guests, who see it on their own terminal and
// may type into it when the host allows.
//
// The wire format is tty-share's (elisescu/tty-share 2.4, which shwim
// runs), written here from its description: an HTTP GET of /s/local/
// whose response headers name a websocket path; on the websocket, text
// messages {"Type":"Write"|"WinSize","Data":...} where Data is the
// base64 (encoding/json's []byte) of the JSON {"Data":<bytes>,"Size":n}
// or {"Cols":c,"Rows":r}. The host sends its PTY's output and its window
// size; a guest sends its keys (and its window size, which the host only
// takes as a hint to redraw).
//
// The pieces, each usable alone:
//   - protocol.go: the messages, encoded and decoded (pure);
//   - filter.go: FilterInput, what of a guest's keys may reach the PTY
//     (pure);
//   - host.go: Host, the PTY and its guests, each a MessageConn;
//   - guest.go: Guest, one guest's view on a local terminal;
//   - websocket.go: MessageConn over tty-share's HTTP + websocket, both
//     ends (Handler for a host, Dial for a guest);
//   - stream.go: MessageConn over any byte stream (a Dilation subchannel
//     between gander peers), length-prefixed;
//   - owner_linux.go: SameUserListener, so that the loopback port the
//     forwarder dials is not every local user's way into the shell.
//
// Every message a peer sends is bounded (MaxMessageBytes), and so is what
// a host keeps for each guest (MaxQueuedOutput).
package terminal

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Message types, as tty-share names them.
const (
	typeWrite   = "Write"
	typeWinSize = "WinSize"
)

// MaxMessageBytes bounds one websocket message from a peer: tty-share
// writes at most a 32 KiB read of its PTY a message, which the two base64
// layers make about 58 KiB. A larger message ends the connection.
const MaxMessageBytes = 256 << 10

// MaxWindowSide bounds a window size a peer reports (columns or rows).
const MaxWindowSide = 10000

// Message is one tty-share message: Write or WinSize.
type Message interface{ isMessage() }

// Write carries terminal bytes: the PTY's output from the host, keys
// from a guest.
type Write struct{ Data []byte }

// WinSize is a window size in cells.
type WinSize struct{ Cols, Rows int }

func (Write) isMessage()   {}
func (WinSize) isMessage() {}

// ErrBadMessage wraps every reason a peer's message is refused.
var ErrBadMessage = errors.New("terminal: bad message")

type wrapper struct {
	Type string
	Data []byte
}

type writeBody struct {
	Data []byte
	Size int
}

type winSizeBody struct {
	Cols int
	Rows int
}

// Encode is m as tty-share sends it.
func Encode(m Message) ([]byte, error) {
	var w wrapper
	var err error
	switch m := m.(type) {
	case Write:
		w.Type = typeWrite
		w.Data, err = json.Marshal(writeBody{Data: m.Data, Size: len(m.Data)})
	case WinSize:
		w.Type = typeWinSize
		w.Data, err = json.Marshal(winSizeBody{Cols: m.Cols, Rows: m.Rows})
	default:
		return nil, fmt.Errorf("terminal: cannot encode %T", m)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// Decode reads one message. A message of a type it does not know gives
// (nil, nil), as tty-share ignores those; anything malformed or too
// large is an ErrBadMessage.
func Decode(b []byte) (Message, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadMessage, len(b), MaxMessageBytes)
	}
	var w wrapper
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	switch w.Type {
	case typeWrite:
		var body writeBody
		if err := json.Unmarshal(w.Data, &body); err != nil {
			return nil, fmt.Errorf("%w: Write: %v", ErrBadMessage, err)
		}
		return Write{Data: body.Data}, nil
	case typeWinSize:
		var body winSizeBody
		if err := json.Unmarshal(w.Data, &body); err != nil {
			return nil, fmt.Errorf("%w: WinSize: %v", ErrBadMessage, err)
		}
		if body.Cols < 0 || body.Rows < 0 || body.Cols > MaxWindowSide || body.Rows > MaxWindowSide {
			return nil, fmt.Errorf("%w: window size %dx%d", ErrBadMessage, body.Cols, body.Rows)
		}
		return WinSize{Cols: body.Cols, Rows: body.Rows}, nil
	}
	return nil, nil
}
