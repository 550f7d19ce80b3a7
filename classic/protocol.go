package classic

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/gander-pair/gander/transit"
)

// AppID is the CLI's application id; the mailbox pairs only sides that
// use the same one.
const AppID = "lothar.com/wormhole/text-or-file-xfer"

// Bounds on what an offer may say. The mailbox already bounds a message's
// size; these bound what we do because of one.
const (
	// MaxNameLength bounds an offered file or directory name (bytes).
	MaxNameLength = 255
	// MaxOfferSize bounds an offered file's size or a zip's (1 PiB: past
	// any disk, so the free-space check refuses first; this only keeps
	// arithmetic away from overflow).
	MaxOfferSize = 1 << 50
	// MaxDirectoryFiles bounds the files an offered directory may hold.
	MaxDirectoryFiles = 1_000_000
	// MaxZipRatio bounds how much a zip may expand (uncompressed bytes
	// per compressed byte), against zip bombs.
	MaxZipRatio = 1000
)

// RemoteError is the peer ending the exchange with {"error": ...}.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return "the other side said: " + e.Message }

// ErrRejected is the message the reference sends when the person says no,
// when a file exists, or when there is no room: the sender shows it.
const rejectedMessage = "transfer rejected"

// BadOfferError is an offer we cannot act on, with why.
type BadOfferError struct{ Reason string }

func (e *BadOfferError) Error() string { return "unusable offer: " + e.Reason }

// message is every field of the protocol we look at; unknown keys are
// ignored, as the reference ignores them.
type message struct {
	Transit *transitMessage `json:"transit,omitempty"`
	Offer   *offerMessage   `json:"offer,omitempty"`
	Answer  *answerMessage  `json:"answer,omitempty"`
	Error   *string         `json:"error,omitempty"`
}

type transitMessage struct {
	Abilities []json.RawMessage `json:"abilities-v1"`
	Hints     []json.RawMessage `json:"hints-v1"`
}

type offerMessage struct {
	Message   *string         `json:"message,omitempty"`
	File      *fileOffer      `json:"file,omitempty"`
	Directory *directoryOffer `json:"directory,omitempty"`
}

type fileOffer struct {
	Filename string `json:"filename"`
	Filesize int64  `json:"filesize"`
}

type directoryOffer struct {
	Mode     string `json:"mode"`
	Dirname  string `json:"dirname"`
	Zipsize  int64  `json:"zipsize"`
	Numbytes int64  `json:"numbytes"`
	Numfiles int    `json:"numfiles"`
}

type answerMessage struct {
	MessageAck string `json:"message_ack,omitempty"`
	FileAck    string `json:"file_ack,omitempty"`
}

// ackRecord is the receiver's last record.
type ackRecord struct {
	Ack    string `json:"ack"`
	SHA256 string `json:"sha256,omitempty"`
}

func decodeMessage(data []byte) (message, error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return message{}, fmt.Errorf("malformed message from the other side: %w", err)
	}
	if m.Error != nil {
		return message{}, &RemoteError{Message: *m.Error}
	}
	return m, nil
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("classic: encoding a message: " + err.Error()) // only our own types
	}
	return b
}

// abilities are the connection types we speak, as the reference lists them.
var abilities = []json.RawMessage{json.RawMessage(`{"type":"direct-tcp-v1"}`), json.RawMessage(`{"type":"relay-v1"}`)}

func transitJSON(hints []transit.Hint) []byte {
	return encode(map[string]transitMessage{"transit": {Abilities: abilities, Hints: transit.EncodeHints(hints)}})
}

func errorJSON(why string) []byte { return encode(map[string]string{"error": why}) }

func answerJSON(a answerMessage) []byte { return encode(map[string]answerMessage{"answer": a}) }

// safeName is the name an offer gives, reduced to one path element as the
// reference does (basename), and refused if nothing usable remains.
func safeName(name string) (string, error) {
	if len(name) > MaxNameLength {
		return "", &BadOfferError{fmt.Sprintf("the name is longer than %d bytes", MaxNameLength)}
	}
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", &BadOfferError{"the name is not valid text"}
	}
	base := filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if base == "." || base == ".." || base == "/" || base == "" {
		return "", &BadOfferError{fmt.Sprintf("the name %q names no file", name)}
	}
	return base, nil
}

func (f *fileOffer) check() error {
	if f.Filesize < 0 || f.Filesize > MaxOfferSize {
		return &BadOfferError{fmt.Sprintf("file size %d is out of range", f.Filesize)}
	}
	_, err := safeName(f.Filename)
	return err
}

func (d *directoryOffer) check() error {
	switch {
	case !strings.HasPrefix(d.Mode, "zipfile"):
		return &BadOfferError{fmt.Sprintf("unknown directory mode %q", d.Mode)}
	case d.Zipsize < 0 || d.Zipsize > MaxOfferSize:
		return &BadOfferError{fmt.Sprintf("zip size %d is out of range", d.Zipsize)}
	case d.Numbytes < 0 || d.Numbytes > MaxOfferSize:
		return &BadOfferError{fmt.Sprintf("directory size %d is out of range", d.Numbytes)}
	case d.Numfiles < 0 || d.Numfiles > MaxDirectoryFiles:
		return &BadOfferError{fmt.Sprintf("%d files is out of range (at most %d)", d.Numfiles, MaxDirectoryFiles)}
	}
	_, err := safeName(d.Dirname)
	return err
}

var errUnknownOffer = errors.New("unknown offer type")
