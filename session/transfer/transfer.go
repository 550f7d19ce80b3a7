// Package transfer sends a file or a directory over one Dilation
// subchannel, gander's "gander-files" subprotocol (PROTOCOL.md describes
// the wire format).
//
// The offering side opens a subchannel for Subprotocol and calls Send.
// The other side accepts the subchannel, calls ReadOffer, shows the Offer
// to its user and answers with Accept or Refuse. Each of Send, Accept and
// Refuse closes the channel when it returns.
package transfer

import (
	"errors"
	"fmt"
	"io"
)

// Subprotocol is the Dilation subprotocol name; one subchannel carries
// one transfer.
const Subprotocol = "gander-files"

// Channel is what a transfer runs over: a *dilation.Subchannel, or a
// *net.TCPConn in tests.
type Channel interface {
	io.ReadWriteCloser
	// CloseWrite tells the peer nothing more will be written.
	CloseWrite() error
}

// Kind says whether an offer is one file or a directory tree.
type Kind byte

const (
	KindFile      Kind = 1
	KindDirectory Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDirectory:
		return "directory"
	}
	return fmt.Sprintf("Kind(%d)", byte(k))
}

// Offer describes what the sender offers.
type Offer struct {
	Name  string // one safe path element
	Kind  Kind
	Size  int64 // bytes of file content in all
	Files int   // regular files (1 for KindFile)
	Dirs  int   // directories below the top one
}

// Progress is how far a transfer has got. It is reported after every
// chunk of at most 256 KiB and after every file, from the goroutine doing
// the transfer: the callback must not block, and a user interface should
// store it and redraw on its own clock.
type Progress struct {
	Size, Done       int64
	Files, FilesDone int
}

var (
	// ErrDigestMismatch: the data arrived whole but its SHA-256 differs
	// from the one the sender computed.
	ErrDigestMismatch = errors.New("transfer: digest mismatch")
	// ErrSizeMismatch: the sender sent more or fewer bytes or files than
	// it offered.
	ErrSizeMismatch = errors.New("transfer: size differs from the offer")
	// ErrFileChanged: a file being sent changed size after it was offered.
	ErrFileChanged = errors.New("transfer: file changed while being sent")
)

// RefusedError is returned by Send when the peer refuses the offer.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string {
	if e.Reason == "" {
		return "transfer: refused by peer"
	}
	return "transfer: refused by peer: " + e.Reason
}

// CanceledError is returned when either side stopped the transfer. ByPeer
// says which; Reason is the peer's text (unsanitised) or ours. A local
// cancellation through a context unwraps to the context's error.
type CanceledError struct {
	Reason string
	ByPeer bool
	cause  error
}

func (e *CanceledError) Error() string {
	who := "canceled"
	if e.ByPeer {
		who = "canceled by peer"
	}
	if e.Reason == "" {
		return "transfer: " + who
	}
	return "transfer: " + who + ": " + e.Reason
}

func (e *CanceledError) Unwrap() error { return e.cause }

// ProtocolError means the peer broke the protocol: a malformed or
// oversized frame, or a message out of turn.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "transfer: protocol error: " + e.Reason }

// UnsafeNameError means a name the peer offered (or a local one we were
// asked to send) cannot be written safely on this system.
type UnsafeNameError struct {
	Name   string // as offered, unsanitised
	Reason string
}

func (e *UnsafeNameError) Error() string {
	return fmt.Sprintf("transfer: unsafe name %q: %s", e.Name, e.Reason)
}
