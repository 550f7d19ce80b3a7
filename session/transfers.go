package session

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
