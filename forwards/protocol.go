package forwards

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// AppID is fowl's application id: gander uses it so that gander and fowl
// users meet on the same mailbox.
const AppID = "meejah.ca/wormhole/forward"

// Feature is what a gander peer lists, under "gander" in its
// app_versions, for this subprotocol.
const Feature = "forwards-v1"

// AppVersions is what gander puts in the version message: fowl's own
// entry (fowl never checks the features), and a "gander" entry that fowl
// ignores and a gander peer reads, listing ganderFeatures; with none,
// forwards' alone. session.AppVersions lists every gander feature: it is
// what gander sends.
func AppVersions(ganderFeatures ...string) map[string]any {
	if len(ganderFeatures) == 0 {
		ganderFeatures = []string{Feature}
	}
	return map[string]any{
		"fowl":   map[string]any{"features": []string{"core-v1"}},
		"gander": map[string]any{"features": ganderFeatures},
	}
}

// PeerIsGander reports whether the peer's app_versions (the raw JSON)
// come from gander rather than fowl: whether they have a "gander" entry.
// session.ParsePeer reads the features too.
func PeerIsGander(appVersions []byte) bool {
	var v map[string]json.RawMessage
	if json.Unmarshal(appVersions, &v) != nil {
		return false
	}
	_, ok := v["gander"]
	return ok
}

// The two subprotocols fowl listens for:
//
//	fowl-commands  opened by the offering side, one per service:
//	               → {"kind": "request-listener", "unique-name", "listen-port"}
//	               ← {"kind": "listener-response", "unique-name", "listening",
//	                  ["desired-port"], ["reason"]}
//	               Closing it stops the listeners it created.
//	fowl           opened by the listening side, one per TCP connection:
//	               → {"unique-name"}   ← {"connected", ["reason"]}
//	               then raw bytes both ways.
//
// Each message is one frame, u16 big-endian length ‖ msgpack map, and
// must travel in one subchannel write: fowl's command reader expects
// exactly one frame per record.
const (
	commandsSubprotocol = "fowl-commands"
	forwardSubprotocol  = "fowl"
	maxFrame            = 65535
)

type listenRequest struct {
	Kind       string `msgpack:"kind"`
	UniqueName string `msgpack:"unique-name"`
	ListenPort *int   `msgpack:"listen-port"`
}

type listenResponse struct {
	Kind        string `msgpack:"kind"`
	UniqueName  string `msgpack:"unique-name"`
	Listening   bool   `msgpack:"listening"`
	DesiredPort *int   `msgpack:"desired-port,omitempty"`
	Reason      string `msgpack:"reason,omitempty"`
}

type forwardRequest struct {
	UniqueName string `msgpack:"unique-name"`
}

type forwardReply struct {
	Connected bool   `msgpack:"connected"`
	Reason    string `msgpack:"reason,omitempty"`
}

const (
	kindRequestListener  = "request-listener"
	kindListenerResponse = "listener-response"
)

// errBadFrame wraps every malformed frame from the peer.
var errBadFrame = errors.New("malformed fowl frame")

// encodeFrame returns the length-prefixed msgpack encoding of msg.
func encodeFrame(msg any) ([]byte, error) {
	body, err := msgpack.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if len(body) > maxFrame {
		return nil, fmt.Errorf("fowl frame of %d bytes exceeds %d", len(body), maxFrame)
	}
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(body)), uint16(len(body))), body...), nil
}

// writeFrame writes msg in one write, as fowl requires.
func writeFrame(w io.Writer, msg any) error {
	frame, err := encodeFrame(msg)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

// readFrame reads one frame's msgpack body. Bytes after it stay in r:
// on a forwarding subchannel they are the start of the stream.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var prefix [2]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(prefix[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: truncated: %v", errBadFrame, err)
	}
	return body, nil
}

// decodeMessage decodes a frame body into msg, which must be a pointer to
// one of the message structs. Unknown keys are ignored, as fowl does.
//
// The body is checked first (checkMsgpack), so that no length in it can
// make the decoder allocate more than the body holds, and it is decoded by
// a decoder of its own rather than msgpack.Unmarshal's pooled ones, whose
// buffers outlive the call: what one frame makes the library allocate is
// garbage once the frame is decoded.
func decodeMessage(body []byte, msg any) error {
	if err := checkMsgpack(body); err != nil {
		return err
	}
	if err := msgpack.NewDecoder(bytes.NewReader(body)).Decode(msg); err != nil {
		return fmt.Errorf("%w: %v", errBadFrame, err)
	}
	return nil
}

// decodeKind reads only the "kind" of a command frame.
func decodeKind(body []byte) (string, error) {
	var k struct {
		Kind string `msgpack:"kind"`
	}
	if err := decodeMessage(body, &k); err != nil {
		return "", err
	}
	return k.Kind, nil
}
