package fowld

import (
	"errors"
	"reflect"
	"testing"

	"github.com/gander-pair/gander/session"
)

func TestDecodeAcceptFileCreate(t *testing.T) {
	for line, want := range map[string]session.Command{
		`{"kind": "accept-file", "id": 3, "directory": "~/in", "create": true}`: session.AcceptTransfer{ID: 3, Dir: "~/in", Create: true},
		`{"kind": "accept-file", "id": 3, "create": null}`:                      session.AcceptTransfer{ID: 3},
	} {
		got, err := decodeCommand([]byte(line))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeCommand(%s) = %#v, %v; want %#v", line, got, err, want)
		}
	}
	if _, err := decodeCommand([]byte(`{"kind": "accept-file", "id": 3, "create": "yes"}`)); err == nil {
		t.Error(`"create": "yes" accepted`)
	}
}

// The waiting offer shows its size; a refusal says who; a folder that
// failed says which and whether it is missing.
func TestEncodeTransferEvents(t *testing.T) {
	e := newFowldEncoder("")
	var got string
	for _, ev := range []session.Event{
		session.TransferProgress{ID: 1, Name: "a.txt", Outgoing: true, Size: 5, Files: 1, Waiting: true},
		session.TransferFinished{ID: 2, Name: "b", Err: &session.RefusedHereError{Kind: session.RefusalByUser}},
		session.TransferFolderFailed{Offer: session.TransferOffered{ID: 3, Name: "c"}, Dir: "/nonexistent/in", Missing: true,
			Err: errors.New("cannot save into /nonexistent/in: no such folder")},
	} {
		got += string(e.encode(ev))
	}
	want := `{"id": 1, "name": "a.txt", "outgoing": true, "bytes": 0, "size": 5, "waiting": true, "kind": "transfer-progress"}` + "\n" +
		`{"id": 2, "name": "b", "outgoing": false, "error": "refused by you", "refused": "user", "summary": "you refused b", "kind": "transfer-finished"}` + "\n" +
		`{"id": 3, "name": "c", "directory": "/nonexistent/in", "missing": true, "error": "cannot save into /nonexistent/in: no such folder", "kind": "transfer-folder-failed"}` + "\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The controller is asked about offers, with a timeout, unless
// --accept-files accepts them; listen requests are not asked (fowld has
// no such question).
func TestControlledConfig(t *testing.T) {
	got := controlled(session.Config{})
	if !got.AskFiles || got.FileAnswerTimeout != ControllerAnswerTimeout || got.AskPeer || got.AcceptFiles {
		t.Errorf("controlled: %+v", got)
	}
	if got := controlled(session.Config{AcceptFiles: true}); got.AskFiles {
		t.Errorf("with --accept-files: %+v", got)
	}
}
