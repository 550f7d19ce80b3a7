package session

import "time"

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
	// SaveDir).
	AcceptTransfer struct {
		ID  int64
		Dir string
	}
	// RefuseTransfer refuses a TransferOffered.
	RefuseTransfer struct{ ID int64 }
	// CancelTransfer stops a transfer in either direction.
	CancelTransfer struct{ ID int64 }
)

func (SendFiles) isCommand()      {}
func (AcceptTransfer) isCommand() {}
func (RefuseTransfer) isCommand() {}
func (CancelTransfer) isCommand() {}
