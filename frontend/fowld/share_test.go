package fowld

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

func TestDecodeShareCommands(t *testing.T) {
	for _, tt := range []struct {
		line string
		want session.Command
	}{
		{`{"kind": "share-start"}`, session.StartShare{}},
		{`{"kind": "share-start", "command": "tmux attach", "cols": 120, "rows": 40}`,
			session.StartShare{Command: []string{"/bin/sh", "-c", "tmux attach"}, Size: session.WinSize{Cols: 120, Rows: 40}}},
		{`{"kind": "share-stop"}`, session.StopShare{}},
		{`{"kind": "share-allow-typing"}`, session.AllowTyping{}},
		{`{"kind": "share-revoke-typing"}`, session.RevokeTyping{}},
		{`{"kind": "share-ask-keyboard"}`, session.AskKeyboard{}},
	} {
		got, err := decodeCommand([]byte(tt.line))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("decodeCommand(%s) = %#v, %v; want %#v", tt.line, got, err, tt.want)
		}
	}
	for _, line := range []string{`{"kind": "share-start", "command": 5}`, `{"kind": "share-start", "cols": 0}`,
		`{"kind": "share-start", "rows": 10001}`} {
		if _, err := decodeCommand([]byte(line)); err == nil {
			t.Errorf("decodeCommand(%s) took it", line)
		}
	}
}

func TestEncodeShareEvents(t *testing.T) {
	e := newFowldEncoder("ws://127.0.0.1:4000/v1")
	var got string
	for _, ev := range []session.Event{
		session.ShareOffered{Outgoing: true, Command: "bash"},
		session.ShareGuestJoined{},
		session.ShareGuestLeft{},
		session.ShareGuestLeft{Err: errors.New("too slow")},
		session.ShareKeyboardRequested{ID: 4},
		session.ShareTyping{Allowed: false, Reason: "no"},
		session.ShareInputDropped{Bytes: 3, Reason: "read-only"},
		session.ShareEnded{Outgoing: true},
		session.ShareEnded{Err: errors.New("gone")},
	} {
		got += string(e.encode(ev))
	}
	const want = `{"outgoing": true, "command": "bash", "kind": "share-offered"}
{"kind": "share-guest-joined"}
{"kind": "share-guest-left"}
{"error": "too slow", "kind": "share-guest-left"}
{"id": 4, "kind": "share-keyboard-requested"}
{"outgoing": false, "allowed": false, "reason": "no", "kind": "share-typing"}
{"bytes": 3, "reason": "read-only", "kind": "share-input-dropped"}
{"outgoing": true, "kind": "share-ended"}
{"outgoing": false, "error": "gone", "kind": "share-ended"}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Two --json sessions: A shares, B sees it and asks for the keyboard, A
// allows then revokes, A stops; both hear every step.
func TestRunJSONShare(t *testing.T) {
	server := mailboxtest.New(t)
	a := startJSONSide(t, "A", session.Config{MailboxURL: server.URL(), CodeLength: 2})
	b := startJSONSide(t, "B", session.Config{MailboxURL: server.URL()})
	a.send(t, `{"kind": "share-start"}`)
	a.wait(t, "error", func(m map[string]any) bool { return m["message"] == session.ErrShareNeedsPeer.Error() })
	a.send(t, `{"kind": "allocate-code"}`)
	code := a.wait(t, "code-allocated", nil)["code"].(string)
	b.send(t, fmt.Sprintf(`{"kind": "set-code", "code": %q}`, code))
	a.wait(t, "peer-connected", nil)
	b.wait(t, "peer-connected", nil)

	a.send(t, `{"kind": "share-start", "command": "echo hi; sleep 60", "cols": 100, "rows": 30}`)
	a.wait(t, "share-offered", func(m map[string]any) bool { return m["outgoing"] == true })
	if o := b.wait(t, "share-offered", nil); o["outgoing"] != false || o["command"] != "/bin/sh -c echo hi; sleep 60" {
		t.Errorf("B's share-offered = %v", o)
	}
	b.send(t, `{"kind": "share-ask-keyboard"}`)
	a.wait(t, "share-keyboard-requested", nil)
	a.send(t, `{"kind": "share-allow-typing"}`)
	a.wait(t, "share-typing", func(m map[string]any) bool { return m["outgoing"] == true && m["allowed"] == true })
	b.wait(t, "share-typing", func(m map[string]any) bool { return m["allowed"] == true })
	a.send(t, `{"kind": "share-revoke-typing"}`)
	b.wait(t, "share-typing", func(m map[string]any) bool {
		return m["allowed"] == false && m["reason"] == "the host took the keyboard back"
	})
	a.send(t, `{"kind": "share-stop"}`)
	a.wait(t, "share-ended", func(m map[string]any) bool { return m["outgoing"] == true && m["error"] == nil })
	b.wait(t, "share-ended", func(m map[string]any) bool { return m["outgoing"] == false && m["error"] == nil })
	a.send(t, `{"kind": "share-stop"}`)
	a.wait(t, "error", func(m map[string]any) bool { return m["message"] == session.ErrNoShare.Error() })

	a.send(t, `{"kind": "session-close", "timeout": 10}`)
	for _, s := range []*jsonSide{a, b} {
		if err := s.end(t); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
}
