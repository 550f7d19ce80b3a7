package tui

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/session"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testNow is the fixed clock of the tests; harness.advance moves it.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// harness drives a Model without a terminal: events and keys go straight
// to Update, and the commands the model sends are read from its channel.
type harness struct {
	t        *testing.T
	m        *Model
	events   chan session.Event
	commands chan session.Command
	clock    time.Time
}

func newHarness(t *testing.T, opts Options, width, height int) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		events:   make(chan session.Event),
		commands: make(chan session.Command, 16),
		clock:    testNow,
	}
	opts.Now = func() time.Time { return h.clock }
	if opts.Version == "" {
		opts.Version = "1.0.0"
	}
	h.m = New(fakeSession{h.events, h.commands}, opts)
	h.m.code.clipboard = noClipboardTools // never the machine's own clipboard
	t.Cleanup(h.m.stop)
	h.m.Update(tea.WindowSizeMsg{Width: width, Height: height})
	return h
}

// fakeSession is a session made of two channels: the test delivers the
// events and reads the commands. Like a session's, its Do never blocks:
// a command beyond the channel's room is dropped.
type fakeSession struct {
	events   chan session.Event
	commands chan session.Command
}

var errFakeFull = errors.New("fake session: too many commands unread")

func (f fakeSession) Do(c session.Command) error {
	select {
	case f.commands <- c:
		return nil
	default:
		return errFakeFull
	}
}

func (f fakeSession) Events() <-chan session.Event { return f.events }

func (h *harness) advance(d time.Duration) { h.clock = h.clock.Add(d) }

// event delivers session events as waitForEvent would. The commands they
// return (the next wait, timers) are not run.
func (h *harness) event(evs ...session.Event) {
	for _, ev := range evs {
		h.m.Update(eventMsg{ev})
	}
}

// press sends keys and runs the commands they return, for a moment: the
// messages those produce come back (timers are left to themselves).
func (h *harness) press(keys ...tea.KeyPressMsg) []tea.Msg {
	var msgs []tea.Msg
	for _, k := range keys {
		_, cmd := h.m.Update(k)
		msgs = append(msgs, drain(cmd)...)
	}
	return msgs
}

// typeText types s into whatever has the focus.
func (h *harness) typeText(s string) {
	for _, r := range s {
		h.press(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// drain runs cmd, and the commands of a batch, waiting a little for each:
// commands that block longer (timers, waiting for events) are left
// running; they return on their own or when the model stops.
func drain(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		if batch, ok := msg.(tea.BatchMsg); ok {
			var msgs []tea.Msg
			for _, c := range batch {
				msgs = append(msgs, drain(c)...)
			}
			return msgs
		}
		if msg == nil {
			return nil
		}
		return []tea.Msg{msg}
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}

// sent returns the commands sent so far.
func (h *harness) sent() []session.Command {
	var cmds []session.Command
	for {
		select {
		case c := <-h.commands:
			cmds = append(cmds, c)
		default:
			return cmds
		}
	}
}

// screen is the view as plain text, without trailing spaces.
func (h *harness) screen() string { return plain(h.m.View().Content) }

func plain(s string) string {
	lines := strings.Split(ansi.Strip(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
}

// golden compares the screen with testdata/name.golden; -update rewrites it.
func (h *harness) golden(name string) {
	h.t.Helper()
	got := h.screen()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run go test ./frontend/tui -update to create it)", err)
	}
	if got != string(want) {
		h.t.Errorf("screen differs from %s (go test ./frontend/tui -update rewrites it)\n--- got:\n%s--- want:\n%s", path, got, want)
	}
}

// Keys.
var (
	keyEnter = tea.KeyPressMsg{Code: tea.KeyEnter}
	keyTab   = tea.KeyPressMsg{Code: tea.KeyTab}
	keyEsc   = tea.KeyPressMsg{Code: tea.KeyEscape}
	keyUp    = tea.KeyPressMsg{Code: tea.KeyUp}
	keyDown  = tea.KeyPressMsg{Code: tea.KeyDown}
	keyCtrlC = tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
)

func keyRune(r rune) tea.KeyPressMsg { return tea.KeyPressMsg{Code: r, Text: string(r)} }

// runEvent delivers a session event and runs the commands it returns
// (not the next wait for an event).
func (h *harness) runEvent(ev session.Event) {
	h.t.Helper()
	drain(h.m.handleEvent(ev))
}
