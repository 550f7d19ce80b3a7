package plain

import (
	"bytes"
	"testing"

	"github.com/gander-pair/gander/session"
)

func TestPrintTransferLines(t *testing.T) {
	for _, tc := range []struct {
		ev   session.Event
		want string
	}{
		{session.TransferProgress{Name: "a.txt", Outgoing: true, Size: 5, Files: 1, Waiting: true},
			"a.txt: offered (5 bytes), waiting for the peer to accept\n"},
		{session.TransferFinished{Name: "a.txt", Err: &session.RefusedHereError{Kind: session.RefusalByUser}}, "You refused a.txt\n"},
	} {
		var out bytes.Buffer
		printEvent(&out, &linkLines{}, tc.ev)
		if out.String() != tc.want {
			t.Errorf("%+v printed %q, want %q", tc.ev, out.String(), tc.want)
		}
	}
}
