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
	"io/fs"
	"time"
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

// Bounds on what a peer can make one transfer spend. The counts and sizes
// a frame may carry are in message.go; these bound time, disk and what a
// receiver accepts by default (Limits).
const (
	// DefaultMaxSize is the largest offer accepted by default: large
	// enough for a disk image or a video project, small enough that one
	// offer cannot take a whole disk unasked. --max-file-size changes it.
	DefaultMaxSize = 10 << 30
	// DefaultMaxEntries bounds files plus directories in one offer
	// (a large source tree has some 100,000; each costs an inode).
	DefaultMaxEntries = 1_000_000
	// DefaultIdleTimeout ends a transfer whose peer sends nothing (or
	// reads nothing) for this long; the Dilation link reconnects well
	// within it.
	DefaultIdleTimeout = time.Minute
	// maxKeepFree and keepFreeShare set how much of the disk a transfer
	// must leave free: 5% of the file system, at most 1 GiB.
	maxKeepFree   = 1 << 30
	keepFreeShare = 20 // 1/20 = 5%
	// roomCheckInterval is how many bytes are written between two checks
	// of the free space while receiving.
	roomCheckInterval = 64 << 20
	// maxPathDepth bounds the elements of an entry's path: each costs
	// a lookup for every file below it.
	maxPathDepth = 256
)

// Timeouts for a peer that stops answering; variables only so that tests
// can shorten them.
var (
	// offerTimeout: a subchannel is opened and no OFFER comes.
	offerTimeout = 30 * time.Second
	// answerTimeout: our OFFER gets no ACCEPT or REFUSE. The peer's user
	// decides meanwhile; a gander receiver gives up sooner (10 minutes)
	// and says so.
	answerTimeout = 15 * time.Minute
	// idleTimeout is a sender's DefaultIdleTimeout (a receiver's is in
	// its Limits).
	idleTimeout = DefaultIdleTimeout
)

// Limits bound what one incoming transfer may take; see Incoming.Fits.
type Limits struct {
	MaxSize     int64         // bytes of content in one offer; 0: no limit
	MaxEntries  int           // files and directories in one offer; 0: no limit
	IdleTimeout time.Duration // nothing received for this long ends it; 0: DefaultIdleTimeout
}

// DefaultLimits are the limits ReadOffer gives an Incoming.
var DefaultLimits = Limits{MaxSize: DefaultMaxSize, MaxEntries: DefaultMaxEntries, IdleTimeout: DefaultIdleTimeout}

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

// LimitError means an offer is refused, or a transfer stopped, because it
// does not fit a limit or the disk. Reason is meant for both users:
// "not enough room: needs 2.0 GiB, 1.5 GiB free".
type LimitError struct{ Reason string }

func (e *LimitError) Error() string { return "transfer: " + e.Reason }

// TimeoutError means the peer did nothing for too long: it sent no offer,
// no answer, no data, or read nothing we sent.
type TimeoutError struct {
	Reason  string // "no data from the peer for 1m0s"
	Timeout time.Duration
}

func (e *TimeoutError) Error() string { return "transfer: " + e.Reason }

func timeoutErrorf(timeout time.Duration, format string) *TimeoutError {
	return &TimeoutError{Reason: fmt.Sprintf(format, timeout), Timeout: timeout}
}

// RefusalKind says who or what refused an offer: a person, the
// receiver's configuration, a limit, or nobody answering. It travels in
// REFUSE's kind form (PROTOCOL.md) to a peer that reads it; an older
// gander gets, and sends, only the reason text (RefusalUnspecified).
type RefusalKind byte

const (
	// RefusalUnspecified: the peer said only a reason (an older gander).
	RefusalUnspecified RefusalKind = iota
	// RefusalByUser: the receiving person said no.
	RefusalByUser
	// RefusalPolicy: the receiver takes no files at all (gander --no-tui
	// without --accept-files, say).
	RefusalPolicy
	// RefusalLimit: too large, too many files, no room, or too many
	// offers at once.
	RefusalLimit
	// RefusalTimeout: nobody answered the offer in time.
	RefusalTimeout
	// RefusalCannotSave: the receiver's folder cannot take files.
	RefusalCannotSave

	lastRefusalKind = RefusalCannotSave
)

func (k RefusalKind) String() string {
	switch k {
	case RefusalByUser:
		return "user"
	case RefusalPolicy:
		return "policy"
	case RefusalLimit:
		return "limit"
	case RefusalTimeout:
		return "timeout"
	case RefusalCannotSave:
		return "cannot-save"
	}
	return "unspecified"
}

// RefusedError is returned by Send when the peer refuses the offer. Kind
// is RefusalUnspecified when the peer did not say (an older gander);
// Reason is the peer's text, unsanitised.
type RefusedError struct {
	Kind   RefusalKind
	Reason string
}

// Error says who refused where that is news; a limit's reason says it
// already ("too large: …"), in the words gander has always used.
func (e *RefusedError) Error() string {
	switch e.Kind {
	case RefusalByUser:
		return "the peer refused it"
	case RefusalPolicy:
		if e.Reason == "" {
			return "the peer does not accept files"
		}
		return "the peer does not accept files (" + e.Reason + ")"
	case RefusalTimeout:
		return "the peer did not answer: " + e.Reason
	case RefusalCannotSave:
		return "the peer cannot save it: " + e.Reason
	}
	if e.Reason == "" {
		return "transfer: refused by peer"
	}
	return "transfer: refused by peer: " + e.Reason
}

// FolderError means Accept could not start saving into Dir (missing, not
// a folder, not writable). Nothing was sent to the peer: the offer still
// waits, and Accept may be called again with another folder, or Refuse.
type FolderError struct {
	Dir string
	Err error
}

func (e *FolderError) Error() string {
	return "cannot save into " + e.Dir + ": " + folderProblem(e.Err)
}

func (e *FolderError) Unwrap() error { return e.Err }

// Missing reports whether the folder does not exist (and could be made).
func (e *FolderError) Missing() bool { return errors.Is(e.Err, fs.ErrNotExist) }

// folderProblem is a folder error without the path it repeats.
func folderProblem(err error) string {
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such folder"
	case errors.As(err, &pathErr):
		return pathErr.Err.Error()
	}
	return err.Error()
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
