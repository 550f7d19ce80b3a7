package tui

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// TestProgramIdleAndQuit runs the real program on a fake terminal: it draws
// once per message, not at all while idle, and q closes the session and
// quits when Closed arrives.
func TestProgramIdleAndQuit(t *testing.T) {
	events := make(chan session.Event)
	commands := make(chan session.Command, 4)
	keys, typeKeys := io.Pipe()
	defer typeKeys.Close()
	m := New(fakeSession{events, commands}, Options{Code: "7-guitarist-revenge"})
	result := make(chan error, 1)
	go func() {
		result <- m.run(context.Background(),
			tea.WithInput(keys), tea.WithOutput(io.Discard),
			tea.WithWindowSize(80, 24), tea.WithoutSignalHandler())
	}()
	for _, ev := range []session.Event{
		session.Welcome{},
		session.CodeReady{Code: "7-guitarist-revenge"},
		session.PeerConnected{Verifier: make([]byte, 32), PeerVersions: json.RawMessage(`{}`)},
		session.LinkStatus{State: session.LinkConnected, Via: "direct 10.0.0.2:4444"},
	} {
		events <- ev
	}
	// Let the last event be drawn, then stay idle.
	time.Sleep(200 * time.Millisecond)
	before := m.Frames()
	time.Sleep(1500 * time.Millisecond)
	if idle := m.Frames() - before; idle != 0 {
		t.Errorf("%d frames drawn while idle", idle)
	}
	if before > 20 {
		t.Errorf("%d frames for a handful of events", before)
	}

	if _, err := typeKeys.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-commands:
		if c != (session.Close{Timeout: 2 * time.Second}) {
			t.Fatalf("q sent %#v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("q sent nothing")
	}
	events <- session.Closed{}
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the program did not quit after Closed")
	}
}
