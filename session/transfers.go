package session

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/gander-pair/gander/internal/sanitize"
	"github.com/gander-pair/gander/session/transfer"
)

// Events and commands of file transfers (gander peers only; fowl has no
// file transfer).

type (
	// TransferOffered: the peer offers a file or directory. Nothing is
	// written until an AcceptTransfer with the same ID.
	TransferOffered struct {
		ID        int64
		Name      string // sanitised, a single path element
		Directory bool
		Size      int64 // bytes in all
		Files     int   // files in a directory
		SaveDir   string
	}
	// TransferProgress reports a transfer moving, at most every
	// TrafficInterval.
	TransferProgress struct {
		ID               int64
		Name             string
		Outgoing         bool
		Size, Done       int64
		Files, FilesDone int
		// Waiting: our offer (Size bytes, Files files) waits for the
		// peer to accept it; nothing is sent yet.
		Waiting bool
	}
	// TransferFinished is a transfer's last event: Err is nil when the
	// file arrived whole (SavedAs is where, on the receiving side).
	TransferFinished struct {
		ID       int64
		Name     string
		Outgoing bool
		SavedAs  string
		Err      error
	}
)

type (
	// TransferAccepted: an incoming offer is accepted (by the user or
	// --accept-files) and is being received into Dir. MaxSize is the
	// per-offer limit and SessionLeft what the session may still accept
	// (0 or -1: no limit).
	TransferAccepted struct {
		ID          int64
		Name        string
		Directory   bool
		Size        int64
		Files       int
		Dir         string
		MaxSize     int64
		SessionLeft int64
	}
	// TransfersRefused: Count offers were refused unread since the last
	// such event, for Reason (too many at once), or ended without an event
	// of their own (Reason says so) so that a peer cannot flood the output.
	TransfersRefused struct {
		Count  int
		Reason string
		Unread bool // refused without reading the offer (too many at once)
	}
	// TransferFolderFailed: an accepted offer cannot be saved into Dir
	// (missing, not a folder, not writable). The peer was told nothing:
	// the offer waits for another AcceptTransfer (Create: true makes a
	// Missing folder) or a RefuseTransfer, until its answer times out.
	TransferFolderFailed struct {
		Offer   TransferOffered
		Dir     string
		Missing bool // the folder does not exist; AcceptTransfer.Create makes it
		Err     error
	}
	// PartialsRemoved: Dir held partial files of an earlier gander that
	// was killed; Removed were removed. Unknown are older gander's
	// partials that cannot say whether their writer still runs: left.
	PartialsRemoved struct {
		Dir              string
		Removed, Unknown []string
	}
)

// FileLimits bound what the peer's files may take; zero values are the
// defaults (transfer.DefaultMaxSize, DefaultMaxSessionBytes,
// transfer.DefaultIdleTimeout), a negative size is no limit.
type FileLimits struct {
	MaxFileSize     int64 // bytes in one offer
	MaxSessionBytes int64 // bytes accepted in all this session
	IdleTimeout     time.Duration
}

type (
	// SendFiles offers each path (a file or a directory) to the peer.
	SendFiles struct{ Paths []string }
	// AcceptTransfer accepts a TransferOffered into Dir (empty: its
	// SaveDir; a leading ~ is the home directory). Create makes Dir if
	// it is missing; otherwise a missing Dir is a TransferFolderFailed.
	AcceptTransfer struct {
		ID     int64
		Dir    string
		Create bool
	}
	// RefuseTransfer refuses a TransferOffered: the person's choice,
	// unless Limit says why the frontend could not ask (Reason, for
	// both sides: "too many offers waiting for an answer").
	RefuseTransfer struct {
		ID     int64
		Limit  bool
		Reason string
	}
	// CancelTransfer stops a transfer in either direction.
	CancelTransfer struct{ ID int64 }
)

func (SendFiles) isCommand()      {}
func (AcceptTransfer) isCommand() {}
func (RefuseTransfer) isCommand() {}
func (CancelTransfer) isCommand() {}

// FeatureFilesRefusals: the peer reads REFUSE with a kind
// (session/transfer/PROTOCOL.md), so our refusals tell it whether a
// person, our configuration or a limit said no.
const FeatureFilesRefusals = "files-refusals-v1"

// Summary says in one line, for people, how a transfer ended: "sent
// notes.txt", "the peer refused notes.txt", "you refused notes.txt",
// "receiving notes.txt failed: …". The name is sanitised; the error
// text too (it may quote the peer).
func (e TransferFinished) Summary() string {
	name := sanitize.Line(e.Name)
	var (
		here     *RefusedHereError
		refused  *transfer.RefusedError
		canceled *transfer.CanceledError
		pathErr  *fs.PathError
	)
	switch {
	case e.Err == nil && e.Outgoing:
		return "sent " + name
	case e.Err == nil:
		return "received " + name
	case errors.As(e.Err, &here):
		return here.summary(name)
	case errors.As(e.Err, &refused):
		switch refused.Kind {
		case transfer.RefusalByUser:
			return "the peer refused " + name
		case transfer.RefusalPolicy:
			return name + ": " + sanitize.Line(refused.Error())
		case transfer.RefusalLimit:
			return "the peer cannot take " + name + ": " + sanitize.Line(refused.Reason)
		case transfer.RefusalCannotSave:
			return "the peer cannot save " + name + ": " + sanitize.Line(refused.Reason)
		case transfer.RefusalTimeout:
			return "nobody answered " + name + " on the peer's side: " + sanitize.Line(refused.Reason)
		case transfer.RefusalUnspecified:
			if refused.Reason == "" {
				return "the peer refused " + name
			}
			return "the peer refused " + name + ": " + sanitize.Line(refused.Reason)
		}
		return "the peer refused " + name + ": " + sanitize.Line(refused.Error())
	case errors.Is(e.Err, ErrOfferWithdrawn):
		return "the peer withdrew its offer of " + name
	case errors.As(e.Err, &canceled) && canceled.ByPeer && strings.HasPrefix(canceled.Reason, transfer.CouldNotSave):
		return "the peer could not save " + name + ": " + sanitize.Line(strings.TrimPrefix(canceled.Reason, transfer.CouldNotSave))
	case errors.As(e.Err, &canceled) && canceled.ByPeer && strings.HasPrefix(canceled.Reason, transfer.CouldNotRead):
		return "the peer could not read " + name + ": " + sanitize.Line(strings.TrimPrefix(canceled.Reason, transfer.CouldNotRead))
	case errors.As(e.Err, &canceled) && canceled.ByPeer:
		if canceled.Reason == "" {
			return "the peer stopped " + name
		}
		return "the peer stopped " + name + ": " + sanitize.Line(canceled.Reason)
	case errors.As(e.Err, &canceled):
		return "you canceled " + name
	}
	way := "receiving "
	if e.Outgoing {
		way = "sending "
	}
	if errors.As(e.Err, &pathErr) {
		// Without the path: a receiver's is the hidden partial file.
		return way + name + " failed: " + pathErr.Op + ": " + sanitize.Line(pathErr.Err.Error())
	}
	return way + name + " failed: " + sanitize.Line(e.Err.Error())
}

// RefusedHereError is how an incoming offer we refused ends: by the
// user, by the configuration (files not accepted), by a limit, or
// unanswered (Kind says which; Reason is what the peer is told).
type RefusedHereError struct {
	Kind   transfer.RefusalKind
	Reason string
}

func (e *RefusedHereError) Error() string {
	if e.Kind == transfer.RefusalByUser {
		return "refused by you"
	}
	return "refused: " + e.Reason
}

func (e *RefusedHereError) summary(name string) string {
	switch e.Kind {
	case transfer.RefusalByUser:
		return "you refused " + name
	case transfer.RefusalPolicy:
		return fmt.Sprintf("refused %s: files are not accepted here (start gander with --accept-files, or without --no-tui)", name)
	}
	return fmt.Sprintf("refused %s: %s", name, sanitize.Line(e.Reason))
}
func (TransferFolderFailed) isEvent() {}

// RefusalKind says who or what refused an offer: RefusalByUser, ...
type RefusalKind = transfer.RefusalKind

const (
	RefusalUnspecified = transfer.RefusalUnspecified // an older gander said only a reason
	RefusalByUser      = transfer.RefusalByUser
	RefusalPolicy      = transfer.RefusalPolicy
	RefusalLimit       = transfer.RefusalLimit
	RefusalTimeout     = transfer.RefusalTimeout
	RefusalCannotSave  = transfer.RefusalCannotSave
)

// Refusal reports whether a TransferFinished's Err is a refusal, by
// either side, and its kind.
func Refusal(err error) (RefusalKind, bool) {
	var (
		here    *RefusedHereError
		refused *transfer.RefusedError
	)
	switch {
	case errors.As(err, &here):
		return here.Kind, true
	case errors.As(err, &refused):
		return refused.Kind, true
	}
	return RefusalUnspecified, false
}
