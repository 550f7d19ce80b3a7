package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// wantSent checks the commands sent since the last call.
func (h *harness) wantSent(want ...session.Command) {
	h.t.Helper()
	got := h.sent()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Errorf("sent %#v, want %#v", got, want)
	}
}

func hasQuit(msgs []tea.Msg) bool {
	for _, m := range msgs {
		if _, ok := m.(tea.QuitMsg); ok {
			return true
		}
	}
	return false
}

func TestCodeEntry_EmptyEnterAllocates(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.press(keyEnter)
	h.wantSent(session.AllocateCode{})
	if !contains(h.screen(), "Asking the server for a new code") {
		t.Errorf("screen:\n%s", h.screen())
	}
}

func TestCodeEntry_EnterSetsCode(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.typeText("  7-guitarist-revenge ")
	h.press(keyEnter)
	h.wantSent(session.SetCode{Code: "7-guitarist-revenge"})
}

func TestCodeEntry_BadCodeSendsNothing(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.typeText("guitarist-revenge")
	h.press(keyEnter)
	h.wantSent()
	if !contains(h.screen(), "needs a numeric nameplate") {
		t.Errorf("no inline error:\n%s", h.screen())
	}
	// Editing clears the error.
	h.press(tea.KeyPressMsg{Code: tea.KeyBackspace})
	if contains(h.screen(), "needs a numeric nameplate") {
		t.Errorf("the error stayed after an edit")
	}
}

func TestCodeEntry_UnknownWordWarnsThenAllows(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.typeText("7-guitarst-revenge")
	h.press(keyEnter)
	h.wantSent()
	if s := h.screen(); !contains(s, "not in the word list") || !contains(s, "guitarist") {
		t.Errorf("no warning with a suggestion:\n%s", s)
	}
	h.press(keyEnter)
	h.wantSent(session.SetCode{Code: "7-guitarst-revenge"})
}

func TestCodeEntry_TabAsksForNameplatesOnce(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.typeText("1")
	h.press(keyTab)
	h.wantSent(session.ListNameplates{})
	// The answer completes the Tab that waited for it: one nameplate
	// fills in.
	h.event(session.Nameplates{Names: []string{"15", "27"}})
	if got := h.m.code.input.Value(); got != "15-" {
		t.Errorf("after the nameplates, the input holds %q, want %q", got, "15-")
	}
	h.typeText("gui")
	h.press(keyTab)
	h.wantSent()
	if got := h.m.code.input.Value(); got != "15-guitarist-" {
		t.Errorf("input %q, want %q", got, "15-guitarist-")
	}
	h.typeText("re")
	h.press(keyTab)
	if s := h.screen(); !contains(s, "15-guitarist-revenge") || !contains(s, "15-guitarist-reward") {
		t.Errorf("several completions are not listed:\n%s", s)
	}
}

// Someone who opens the app before their peer made its code: the first
// list has no such nameplate; a later Tab asks again (not at every Tab)
// and completes.
func TestCodeEntry_TabAsksAgainForANameplateNotListed(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.typeText("7")
	h.press(keyTab)
	h.wantSent(session.ListNameplates{})
	h.event(session.Nameplates{Names: []string{"3"}})
	if got := h.m.code.input.Value(); got != "7" {
		t.Fatalf("input %q after a list without 7", got)
	}
	h.press(keyTab)
	h.wantSent() // just asked
	h.m.code.listedAt = h.m.code.listedAt.Add(-nameplatesRelisted)
	h.press(keyTab)
	h.wantSent(session.ListNameplates{})
	h.event(session.Nameplates{Names: []string{"3", "7"}})
	if got := h.m.code.input.Value(); got != "7-" {
		t.Errorf("input %q after the second list, want %q", got, "7-")
	}
	h.typeText("gui")
	h.m.code.listedAt = h.m.code.listedAt.Add(-nameplatesRelisted)
	h.press(keyTab)
	h.wantSent() // words need no server
	if got := h.m.code.input.Value(); got != "7-guitarist-" {
		t.Errorf("input %q, want %q", got, "7-guitarist-")
	}
}

func TestCodeEntry_QAndQuestionMark(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.typeText("q")
	h.wantSent()
	if got := h.m.code.input.Value(); got != "q" {
		t.Errorf("q was not typed: %q", got)
	}
	h.press(keyRune('?'))
	if !h.m.showHelp {
		t.Errorf("? did not open the help")
	}
	h.press(keyRune('x'))
	if h.m.showHelp || h.m.code.input.Value() != "q" {
		t.Errorf("a key should only close the help")
	}
}

func TestCopyCode(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.press(keyEnter)
	h.sent()
	h.event(session.CodeReady{Code: "7-guitarist-revenge"})
	msgs := h.press(keyRune('c'))
	if len(msgs) != 1 {
		t.Fatalf("c gave messages %#v, want the clipboard one", msgs)
	}
	if got, want := msgs[0], tea.SetClipboard("7-guitarist-revenge")(); !reflect.DeepEqual(got, want) {
		t.Errorf("c gave %#v, want %#v", got, want)
	}
	// No clipboard program: OSC 52, which nothing confirms, and the note
	// says only that.
	if !contains(h.screen(), "sent to the terminal's clipboard (OSC 52)") {
		t.Errorf("no note of the copy:\n%s", h.screen())
	}
	h.m.Update(copiedDoneMsg{seq: h.m.code.copySeq})
	if contains(h.screen(), "clipboard") {
		t.Errorf("the copy's note stayed")
	}
}

func TestPermissionAnswers(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v')) // questions wait for the verifier
	for i := int64(1); i <= 4; i++ {
		h.event(session.PermissionRequest{ID: i, Request: session.ListenRequest{Service: "s"}})
	}
	if !contains(h.screen(), "3 more waiting") {
		t.Errorf("queue not shown:\n%s", h.screen())
	}
	h.press(keyRune('o'))
	h.press(keyRune('a'))
	h.event(session.PermissionWithdrawn{ID: 3})
	h.press(keyEsc)
	h.wantSent(
		session.Answer{ID: 1, Decision: session.AllowOnce},
		session.Answer{ID: 2, Decision: session.AllowAlways},
		session.Answer{ID: 4, Decision: session.Deny},
	)
	if h.m.dialogs.active() {
		t.Errorf("dialogs left over")
	}
	// Keys go back to the main screen (v confirmed already: ? opens help).
	h.press(keyRune('?'))
	if !h.m.showHelp {
		t.Errorf("? did not open the help after the dialogs")
	}
}

func TestTransferOfferAnswers(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v')) // questions wait for the verifier
	base := t.TempDir()   // the folder typed must exist (a missing one is offered to be made)
	os.MkdirAll(filepath.Join(base, "d", "tmp"), 0o755)
	h.event(
		session.TransferOffered{ID: 1, Name: "a.txt", Size: 10, SaveDir: "/dl"},
		session.TransferOffered{ID: 2, Name: "b.txt", Size: 10, SaveDir: base + "/dl"},
		session.TransferOffered{ID: 3, Name: "c", Directory: true, Files: 3, Size: 10, SaveDir: "/dl"},
	)
	h.press(keyRune('y'))
	h.press(keyRune('f'))
	h.press(keyRune('n')) // typed into the folder input, not a refusal
	h.press(tea.KeyPressMsg{Code: tea.KeyBackspace}, tea.KeyPressMsg{Code: tea.KeyBackspace})
	h.typeText("/tmp")
	h.press(keyEnter)
	h.press(keyRune('n'))
	h.wantSent(
		session.AcceptTransfer{ID: 1},
		session.AcceptTransfer{ID: 2, Dir: filepath.Join(base, "d", "tmp")},
		session.RefuseTransfer{ID: 3},
	)
	if len(h.m.transfers.rows) != 2 {
		t.Errorf("accepted transfers not listed: %d rows", len(h.m.transfers.rows))
	}
}

func TestAddForward(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('a'))
	h.typeText("web:8000")
	h.press(keyEnter)
	h.press(keyRune('a'), keyTab)
	h.typeText("db:5432:bind=127.0.0.2")
	h.press(keyEnter)
	remote, _ := session.ParseRemote("web:8000")
	local, _ := session.ParseLocal("db:5432:bind=127.0.0.2")
	h.wantSent(session.AddRemote{Remote: remote}, session.AddLocal{Local: local})

	// A bad spec or a name in use: nothing is sent; Esc cancels.
	h.press(keyRune('a'))
	h.typeText("web")
	h.press(keyEnter)
	if !contains(h.screen(), `already a service named "web"`) {
		t.Errorf("no error for a name in use:\n%s", h.screen())
	}
	h.press(keyEsc)
	h.wantSent()
	if h.m.forwards.form != nil {
		t.Errorf("esc did not close the form")
	}
}

func TestRemoveForward(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.press(keyDown, keyRune('d'))
	if !contains(h.screen(), `Remove the forward "database"?`) {
		t.Errorf("no confirmation:\n%s", h.screen())
	}
	h.press(keyRune('n'))
	h.press(keyUp, keyRune('d'), keyRune('y'))
	h.wantSent(session.Remove{Service: "web"})
	h.event(session.ForwardRemoved{Service: "web"})
	if len(h.m.forwards.rows) != 1 || h.m.forwards.rows[0].name != "database" {
		t.Errorf("rows after removal: %v", h.m.forwards.rows)
	}
}

func TestCancelTransfer(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.event(
		session.TransferProgress{ID: 7, Name: "a", Size: 100, Done: 10},
		session.TransferProgress{ID: 8, Name: "b", Size: 100, Done: 10},
	)
	h.press(keyRune('x')) // the forwards have the focus: nothing
	h.press(keyTab, keyDown, keyRune('x'))
	h.wantSent(session.CancelTransfer{ID: 8})
}

func TestQuitClosesThenWaitsForClosed(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	if msgs := h.press(keyRune('q')); hasQuit(msgs) {
		t.Fatalf("q quit before the session closed")
	}
	h.wantSent(session.Close{Timeout: 2 * time.Second})
	if !contains(h.screen(), "closing…") {
		t.Errorf("no closing note:\n%s", h.screen())
	}
	_, cmd := h.m.Update(eventMsg{session.Closed{}})
	if !hasQuit(drain(cmd)) {
		t.Errorf("Closed did not quit")
	}
	if err := h.m.Err(); err != nil {
		t.Errorf("Err() = %v after a happy close", err)
	}
}

func TestQuitTimesOut(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyCtrlC)
	h.wantSent(session.Close{Timeout: 2 * time.Second})
	_, cmd := h.m.Update(quitTimeoutMsg{})
	if !hasQuit(drain(cmd)) {
		t.Errorf("the timeout did not quit")
	}
	// A second ctrl+c quits at once.
	h2 := connected(t, 80, 24, Options{})
	h2.press(keyCtrlC)
	if !hasQuit(h2.press(keyCtrlC)) {
		t.Errorf("a second ctrl+c did not quit")
	}
}

func TestCtrlCWhileTyping(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.typeText("7-gu")
	h.press(keyCtrlC)
	h.wantSent(session.Close{Timeout: 2 * time.Second})
}

func TestSessionEndsByItself(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.event(session.PeerClosing{}, session.Closed{})
	if s := h.screen(); !contains(s, "Your peer closed the session") || !contains(s, "Press any key") {
		t.Errorf("screen:\n%s", s)
	}
	if !hasQuit(h.press(keyRune('z'))) {
		t.Errorf("a key did not quit")
	}
	h.wantSent()
	if err := h.m.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestEventsChannelClosed(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.m.Update(eventsClosedMsg{})
	if !contains(h.screen(), "The session stopped") {
		t.Errorf("screen:\n%s", h.screen())
	}
}

func TestCommandFailedIsANotice(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.event(session.CommandFailed{Err: session.ErrNoSuchRequest})
	if !contains(h.screen(), "no such permission request") {
		t.Errorf("screen:\n%s", h.screen())
	}
}

// colourSGR matches an SGR sequence that sets a colour: 30–39, 40–49,
// 90–97, 100–107 (and so 38;5;n and 38;2;r;g;b).
var colourSGR = regexp.MustCompile(`\x1b\[(?:[0-9]*;)*(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9]*)*m`)

func TestNoColor(t *testing.T) {
	screens := func(noColor bool) []string {
		var out []string
		h := newHarness(t, Options{NoColor: noColor}, 80, 24)
		h.typeText("7-guitarist-re")
		h.press(keyTab)
		out = append(out, h.m.View().Content)
		h = connected(t, 80, 24, Options{NoColor: noColor})
		withForwards(h)
		h.event(session.TransferProgress{ID: 1, Name: "f", Size: 100, Done: 50})
		out = append(out, h.m.View().Content)
		h.press(keyRune('a'))
		h.typeText("x:y")
		out = append(out, h.m.View().Content)
		h.press(keyEsc, keyRune('?'))
		out = append(out, h.m.View().Content)
		h.press(keyEsc)
		h.event(session.PermissionRequest{ID: 1, Request: session.ListenRequest{Service: "s"}})
		out = append(out, h.m.View().Content)
		h.event(session.Closed{Err: session.ErrWrongCode})
		out = append(out, h.m.View().Content)
		return out
	}
	for i, s := range screens(true) {
		if loc := colourSGR.FindStringIndex(s); loc != nil {
			t.Errorf("screen %d has a colour sequence %q:\n%s", i, s[loc[0]:loc[1]], s)
		}
		if !contains(s, "\x1b[") {
			t.Errorf("screen %d has no styles at all (bold, reverse)", i)
		}
	}
	// The check itself finds colours in the coloured screens.
	for i, s := range screens(false) {
		if !colourSGR.MatchString(s) {
			t.Errorf("coloured screen %d has no colour: is the check broken?", i)
		}
	}
}

// The selection must be visible without colour.
func TestSelectionHasMarker(t *testing.T) {
	h := connected(t, 80, 24, Options{NoColor: true})
	withForwards(h)
	h.press(keyDown)
	if !regexp.MustCompile(`(?m)^ › database`).MatchString(h.screen()) {
		t.Errorf("no marker on the selected row:\n%s", h.screen())
	}
}

func TestFramesCountViews(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	before := h.m.Frames()
	for range 5 {
		h.m.View()
	}
	if got := h.m.Frames() - before; got != 5 {
		t.Errorf("Frames grew by %d after 5 views", got)
	}
}

// Nothing ticks while idle: the only thing Init starts is the wait for the
// next event, and timers stop when they have nothing left to do.
func TestNoTicksWhenIdle(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	if msgs := drain(h.m.Init()); len(msgs) != 0 {
		t.Errorf("Init produced %#v with no event", msgs)
	}
	// Traffic starts one stale check; with nothing moving any more it
	// ends.
	withForwards(h)
	h.advance(time.Second)
	if _, cmd := h.m.Update(staleCheckMsg{}); cmd != nil {
		t.Errorf("a stale check with nothing moving scheduled another")
	}
	if got := h.m.forwards.rows[0].rate.perSec; got != 0 {
		t.Errorf("a stopped rate shows %v", got)
	}
	// The reconnection tick runs only while reconnecting.
	_, cmd := h.m.Update(eventMsg{session.LinkStatus{State: session.LinkReconnecting}})
	if cmd == nil {
		t.Fatalf("no tick when reconnecting")
	}
	if _, cmd := h.m.Update(reconnectTickMsg{gen: h.m.status.reconnectGen}); cmd == nil {
		t.Errorf("the tick stopped while still reconnecting")
	}
	h.event(session.LinkStatus{State: session.LinkConnected, Via: "relay 10.0.0.1:4001", Relayed: true})
	if _, cmd := h.m.Update(reconnectTickMsg{gen: h.m.status.reconnectGen}); cmd != nil {
		t.Errorf("the tick went on after reconnecting")
	}
	if !contains(h.screen(), "relay 10.0.0.1:4001") {
		t.Errorf("no relay path:\n%s", h.screen())
	}
}

// The commands that wait for events and send commands return once the
// model stops, so nothing is left behind when Run ends.
func TestCommandsReturnAfterStop(t *testing.T) {
	events := make(chan session.Event)
	commands := make(chan session.Command) // nobody reads it
	m := New(fakeSession{events, commands}, Options{})
	var wg sync.WaitGroup
	for _, cmd := range []tea.Cmd{m.Init(), m.send(session.Ping{})} {
		wg.Add(1)
		go func() { defer wg.Done(); cmd() }()
	}
	time.Sleep(20 * time.Millisecond)
	m.stop()
	m.stop() // twice is fine
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Second):
		t.Fatal("commands still blocked after stop")
	}
}

func TestWaitForEventReadsTheChannel(t *testing.T) {
	events := make(chan session.Event, 1)
	m := New(fakeSession{events, make(chan session.Command, 1)}, Options{})
	defer m.stop()
	events <- session.PeerClosing{}
	if msg := m.Init()(); !reflect.DeepEqual(msg, eventMsg{session.PeerClosing{}}) {
		t.Errorf("got %#v", msg)
	}
	close(events)
	if msg := m.waitForEvent()(); msg != (eventsClosedMsg{}) {
		t.Errorf("after close, got %#v", msg)
	}
}

// After Closed the model stops reading events: main may close the channel.
func TestClosedIsTheLastEvent(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	_, cmd := h.m.Update(eventMsg{session.Closed{}})
	if msgs := drain(cmd); len(msgs) != 0 {
		t.Errorf("after Closed: %#v", msgs)
	}
	h.m.Update(eventsClosedMsg{})
	if err := h.m.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

// Files dropped on the terminal (a paste with no input focused) open the
// send prompt; Enter offers them. s opens it empty; a bad path is shown
// and nothing is sent.
func TestDroppedFilesAreSent(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a file.txt"), filepath.Join(dir, "b.txt")
	os.WriteFile(a, []byte("a"), 0o644)
	os.WriteFile(b, []byte("b"), 0o644)
	h := connected(t, 80, 24, Options{Home: dir})

	h.m.Update(tea.PasteMsg{Content: "'" + a + "' " + b + "\n"})
	if h.m.sending == nil {
		t.Fatal("a drop did not open the send prompt")
	}
	h.press(keyEnter)
	h.wantSent(session.SendFiles{Paths: []string{a, b}})
	if h.m.sending != nil {
		t.Fatal("the prompt stayed open after sending")
	}

	h.press(keyRune('s'))
	h.typeText("~/missing.txt")
	h.press(keyEnter)
	if !contains(h.screen(), "missing.txt: no") {
		t.Errorf("no complaint about a missing file:\n%s", h.screen())
	}
	h.press(keyEsc)
	h.wantSent()
}

func TestScreenSendPrompt(t *testing.T) {
	dir := "/nonexistent-home"
	h := connected(t, 80, 24, Options{Home: dir})
	h.m.Update(tea.PasteMsg{Content: "file:///etc/passwd /etc"})
	h.golden("send_prompt")
}

// The peer's questions wait until the verifier is confirmed: before, who
// asks is not known. A hint says they are there.
func TestDialogsWaitForTheVerifier(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.event(
		session.PermissionRequest{ID: 1, Request: session.ListenRequest{Service: "web"}},
		session.TransferOffered{ID: 2, Name: "a.txt", Size: 10, SaveDir: "/dl"},
	)
	if s := h.screen(); contains(s, "Your peer asks") || !contains(s, "your peer asks for 2 things: confirm the verifier first") {
		t.Errorf("the questions are not held with a hint:\n%s", s)
	}
	h.press(keyRune('o'), keyRune('y'))
	h.wantSent()
	h.press(keyRune('v'))
	if !h.m.verifier.confirmed || !contains(h.screen(), "Your peer asks to listen") {
		t.Fatalf("v did not confirm and show the question:\n%s", h.screen())
	}
	h.press(keyRune('o'), keyRune('y'))
	h.wantSent(session.Answer{ID: 1, Decision: session.AllowOnce}, session.AcceptTransfer{ID: 2})
}

// D answers every waiting question no: the session denies the waiting
// requests, offers are refused one by one.
func TestDenyAllKey(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(
		session.PermissionRequest{ID: 1, Request: session.ListenRequest{Service: "a"}},
		session.TransferOffered{ID: 7, Name: "a.txt", Size: 10, SaveDir: "/dl"},
		session.PermissionRequest{ID: 2, Request: session.ListenRequest{Service: "b"}},
		session.TransferOffered{ID: 8, Name: "b.txt", Size: 10, SaveDir: "/dl"},
	)
	if s := h.screen(); !contains(s, "D no to all waiting") || !contains(s, "3 more waiting") {
		t.Errorf("no deny-all key shown:\n%s", s)
	}
	h.press(keyRune('D'))
	h.wantSent(session.DenyAll{}, session.RefuseTransfer{ID: 7}, session.RefuseTransfer{ID: 8})
	if h.m.dialogs.active() {
		t.Fatal("dialogs left after deny all")
	}
	// Not for the session: the next question is asked.
	h.event(session.PermissionRequest{ID: 3, Request: session.ListenRequest{Service: "c"}})
	if !contains(h.screen(), `service "c"`) {
		t.Errorf("the next question is not shown:\n%s", h.screen())
	}
}

// B denies everything, now and for the rest of the session: later offers
// are refused without a dialog.
func TestBlockKey(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(session.TransferOffered{ID: 7, Name: "a.txt", Size: 10, SaveDir: "/dl"})
	h.press(keyRune('B'))
	h.wantSent(session.DenyAll{ForSession: true}, session.RefuseTransfer{ID: 7})
	h.runEvent(session.TransferOffered{ID: 8, Name: "b.txt", Size: 10, SaveDir: "/dl"})
	h.wantSent(session.RefuseTransfer{ID: 8})
	if h.m.dialogs.active() {
		t.Fatal("a dialog after B")
	}
}

// Offers waiting for an answer are bounded; the session bounds the
// permission requests itself.
func TestWaitingOffersAreBounded(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	var want []session.Command
	for i := int64(1); i <= maxWaitingOffers+3; i++ {
		h.runEvent(session.TransferOffered{ID: i, Name: "f", Size: 1, SaveDir: "/dl"})
		if i > maxWaitingOffers {
			want = append(want, session.RefuseTransfer{ID: i, Limit: true, Reason: tooManyOffers}) // a limit, not the person
		}
	}
	h.wantSent(want...)
	if n := len(h.m.dialogs.items); n != maxWaitingOffers {
		t.Fatalf("%d offers wait, want %d", n, maxWaitingOffers)
	}
	if !contains(h.screen(), "too many") {
		t.Errorf("the refusal is not shown:\n%s", h.screen())
	}
}

// A code someone else used is spoiled: the closed screen says so and n
// asks main for a new code; any other key just exits.
func TestSpoiledCodeOffersANewOne(t *testing.T) {
	spoiled := fmt.Errorf("someone else used nameplate 7 before your peer: %w", session.ErrCodeSpoiled)
	for _, tt := range []struct {
		key  rune
		want error
	}{{'n', ErrNewCode}, {'q', nil}} {
		h := newHarness(t, Options{}, 80, 24)
		h.event(session.Welcome{}, session.CodeReady{Code: "7-guitarist-revenge"},
			session.Closed{Err: spoiled})
		if s := h.screen(); !contains(s, "This code is spoiled") || !contains(s, "Press n for a new code") {
			t.Fatalf("screen:\n%s", s)
		}
		if !hasQuit(h.press(keyRune(tt.key))) {
			t.Errorf("%c did not quit", tt.key)
		}
		err := h.m.Err()
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("after %c: Err() = %v, want %v", tt.key, err, tt.want)
		}
		if tt.want == nil && errors.Is(err, ErrNewCode) {
			t.Errorf("after %c: Err() = %v, want no new code", tt.key, err)
		}
	}
}

// Offers refused in bulk (too many at once) and stale partial files
// removed reach the status line, not only the plain output.
func TestBulkRefusalsAndRemovedPartialsAreShown(t *testing.T) {
	h := connected(t, 100, 24, Options{})
	h.event(session.TransfersRefused{Count: 37, Reason: "too many transfers at once", Unread: true})
	if s := h.screen(); !contains(s, "refused 37 offers of your peer unread: too many transfers at once") {
		t.Errorf("screen:\n%s", s)
	}
	h.event(session.PartialsRemoved{Dir: "/tmp/in", Removed: []string{".a.gander-partial-1-2-3"}})
	if s := h.screen(); !contains(s, "removed 1 partial files an earlier gander left in /tmp/in") {
		t.Errorf("screen:\n%s", s)
	}
}

// A paste while the removal confirmation is open goes nowhere: the
// confirmation has the keyboard, so no send prompt opens under it.
func TestPasteDuringRemovalConfirmation(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.press(keyRune('d'))
	h.m.Update(tea.PasteMsg{Content: "/etc/hostname"})
	if h.m.sending != nil {
		t.Errorf("a paste opened the send prompt under the confirmation")
	}
	h.press(keyRune('y'))
	h.wantSent(session.Remove{Service: "web"})
}

// A peer that does not advertise file transfer (fowl) is offered none:
// s and a drop say so instead of opening the send prompt, and the help
// line leaves "send files" out.
func TestNoFileSendingToAPeerWithoutIt(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	fowl := []byte(`{"fowl":{"features":["core-v1"]}}`)
	h.event(session.Welcome{}, session.CodeReady{Code: "7-guitarist-revenge"},
		session.PeerConnected{Verifier: make([]byte, 32), PeerVersions: fowl, Peer: session.ParsePeer(fowl)})
	h.press(keyRune('v'))
	h.press(keyRune('s'))
	if h.m.sending != nil {
		t.Fatal("s opened the send prompt for a fowl peer")
	}
	h.m.Update(tea.PasteMsg{Content: "/etc/hosts\n"})
	if h.m.sending != nil {
		t.Fatal("a drop opened the send prompt for a fowl peer")
	}
	if screen := h.screen(); !strings.Contains(screen, "does not take files") || strings.Contains(screen, "send files") {
		t.Errorf("screen:\n%s", screen)
	}
}
