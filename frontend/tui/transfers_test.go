package tui

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// A steady 10 MiB/s stream, counted in bursts of 1 MiB as a link
// delivers it and sampled every 250 ms ± 100 ms, reads steady: within 10%
// once a second and a half has passed (the raw rate between two samples
// swings between about 6 and 16 MiB/s here).
func TestSmoothRateSteadyStream(t *testing.T) {
	const perSec = 10 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Unix(1000, 0)
	var r smoothRate
	var rawLow, rawHigh float64 = math.Inf(1), 0
	var lastBytes int64
	var lastAt time.Time
	for i := range 120 {
		at := time.Duration(i)*250*time.Millisecond + time.Duration(rng.IntN(200)-100)*time.Millisecond
		if at < 0 {
			at = 0
		}
		now := start.Add(at)
		bytes := int64(at.Seconds()*perSec) / (1 << 20) * (1 << 20) // whole 1 MiB bursts only
		r.sample(bytes, now)
		if i > 0 {
			raw := float64(bytes-lastBytes) / now.Sub(lastAt).Seconds()
			rawLow, rawHigh = min(rawLow, raw), max(rawHigh, raw)
		}
		lastBytes, lastAt = bytes, now
		if at >= 1500*time.Millisecond {
			if got := r.perSec; math.Abs(got-perSec)/perSec > 0.10 {
				t.Fatalf("at %v: %.1f MiB/s, want 10 ± 1", at, got/(1<<20))
			}
		}
	}
	if rawHigh/rawLow < 2 {
		t.Fatalf("the raw rate only varied %.1f–%.1f MiB/s: not a bursty test", rawLow/(1<<20), rawHigh/(1<<20))
	}
}

// The smoothed rate still follows a real change within a few seconds,
// and an ETA comes from it.
func TestSmoothRateFollowsAChange(t *testing.T) {
	start := time.Unix(1000, 0)
	var r smoothRate
	bytes := int64(0)
	for i := range 40 { // 10 s at 10 MB/s, then 10 s at 2 MB/s
		if i < 20 {
			bytes += 5_000_000
		} else {
			bytes += 1_000_000
		}
		r.sample(bytes, start.Add(time.Duration(i)*500*time.Millisecond))
	}
	if math.Abs(r.perSec-2_000_000) > 200_000 {
		t.Fatalf("%.0f B/s 10 s after slowing to 2 MB/s", r.perSec)
	}
	if left, ok := r.eta(20_000_000); !ok || left < 9*time.Second || left > 11*time.Second {
		t.Fatalf("eta %v %v for 20 MB at 2 MB/s", left, ok)
	}
	if r.expire(start.Add(30 * time.Second)) {
		t.Fatal("a rate not sampled for 10 s still moves")
	}
}

// While the peer decides, the sender's row says so with the real size
// and no bar; refusals say who refused, on both sides.
func TestScreenTransfersWaitingAndRefused(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(
		session.TransferProgress{ID: 1, Name: "notes.txt", Outgoing: true, Size: 12_345, Files: 1, Waiting: true},
		session.TransferProgress{ID: 2, Name: "photos", Outgoing: true, Size: 48_000_000, Files: 12, Waiting: true},
		session.TransferFinished{ID: 3, Name: "draft.txt", Outgoing: true, Err: &session.RefusedHereError{Kind: session.RefusalPolicy}},
		session.TransferFinished{ID: 4, Name: "b.txt", Err: &session.RefusedHereError{Kind: session.RefusalByUser}},
	)
	h.golden("transfers_waiting_refused")
}

// C clears the transfers that ended, and the help line offers it only
// when there are some.
func TestClearFinishedTransfers(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(session.TransferProgress{ID: 1, Name: "big.iso", Size: 100, Done: 10, Files: 1})
	if contains(h.screen(), "clear finished") {
		t.Errorf("clear offered with nothing finished:\n%s", h.screen())
	}
	h.event(
		session.TransferFinished{ID: 2, Name: "a.txt", Outgoing: true},
		session.TransferFinished{ID: 3, Name: "b.txt", Err: &session.RefusedHereError{Kind: session.RefusalByUser}},
	)
	if keys := h.m.transfers.helpKeys(); keys[len(keys)-1].Help().Key != "C" {
		t.Errorf("the transfers' keys do not offer C: %v", keys)
	}
	h.golden("transfers_before_clear")
	h.press(keyRune('C'))
	if got := len(h.m.transfers.rows); got != 1 || h.m.transfers.rows[0].id != 1 {
		t.Fatalf("after C: %d rows", got)
	}
	if s := h.screen(); contains(s, "sent a.txt") || contains(s, "✗ you refused b.txt") || !contains(s, "big.iso") {
		t.Errorf("after C:\n%s", s)
	}
	h.press(keyRune('x')) // the selection is still the running transfer
	h.wantSent(session.CancelTransfer{ID: 1})
}

// Accepting into a folder that does not exist says so and offers to make
// it; Enter again accepts with Create. A folder the session could not use
// brings the question back with the reason, and the person retypes.
func TestAcceptIntoMissingFolder(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	offer := session.TransferOffered{ID: 7, Name: "notes.txt", Size: 10, Files: 1, SaveDir: "/dl"}
	h.event(offer)
	h.press(keyRune('f'))
	for range len("/dl") {
		h.press(tea.KeyPressMsg{Code: tea.KeyBackspace})
	}
	h.typeText("~/incoming")
	h.press(keyEnter)
	h.wantSent()
	if s := h.screen(); !contains(s, "~/incoming does not exist yet: enter again creates it") {
		t.Fatalf("no offer to create the folder:\n%s", s)
	}
	h.golden("accept_missing_folder")
	h.press(keyEnter)
	want := filepath.Join(home, "incoming")
	h.wantSent(session.AcceptTransfer{ID: 7, Dir: want, Create: true})

	// The session could not use it after all: asked again, retyped.
	h.event(session.TransferFolderFailed{Offer: offer, Dir: want, Err: os.ErrPermission})
	if s := h.screen(); !contains(s, "permission denied") || !contains(s, "folder: ") {
		t.Fatalf("the failed folder is not asked again:\n%s", s)
	}
	if len(h.m.transfers.rows) != 0 {
		t.Errorf("the failed accept still has a row")
	}
	for range len(want) {
		h.press(tea.KeyPressMsg{Code: tea.KeyBackspace})
	}
	h.typeText(home)
	h.press(keyEnter)
	h.wantSent(session.AcceptTransfer{ID: 7, Dir: home})
}

// The send prompt takes a path relative to the working directory, and
// Tab completes it: to the one name that fits, or as far as several
// agree (then they are listed).
func TestSendPromptRelativeAndCompletion(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"notes.txt", "notebook.md", "report with spaces.pdf"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "photos"), 0o755)
	h := connected(t, 80, 24, Options{Home: dir})
	h.press(keyRune('v'))
	h.press(keyRune('s'))
	h.m.sending.cwd = dir

	h.typeText("rep")
	h.press(keyTab)
	if got := h.m.sending.input.Value(); got != `report\ with\ spaces.pdf` {
		t.Fatalf("completed to %q", got)
	}
	h.typeText(" no")
	h.press(keyTab)
	if got := h.m.sending.input.Value(); got != `report\ with\ spaces.pdf note` {
		t.Fatalf("completed to %q", got)
	}
	h.golden("send_prompt_completion")
	h.typeText("s")
	h.press(keyTab)
	h.typeText(" ~/ph")
	h.press(keyTab)
	if got := h.m.sending.input.Value(); got != `report\ with\ spaces.pdf notes.txt ~/photos/` {
		t.Fatalf("completed to %q", got)
	}
	h.press(keyEnter)
	h.wantSent(session.SendFiles{Paths: []string{
		filepath.Join(dir, "report with spaces.pdf"), filepath.Join(dir, "notes.txt"), filepath.Join(dir, "photos"),
	}})
}

func TestHelpOverlayListsClear(t *testing.T) {
	h := connected(t, 100, 30, Options{})
	h.press(keyRune('?'))
	if s := h.screen(); !contains(s, "clear finished") {
		t.Errorf("the help does not list C:\n%s", s)
	}
}
