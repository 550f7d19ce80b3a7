package wormhole

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/wormhole/codes"
	"github.com/gander-pair/gander/wormhole/mailbox"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
	"github.com/gander-pair/gander/wormhole/spake2"
)

// stranger claims nameplate as a third party who read it from the
// server's list: a bare mailbox client, no pake of its own.
func stranger(t *testing.T, server *mailboxtest.Server, nameplate string) *mailbox.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mailbox.Dial(ctx, mailbox.Config{URL: server.URL(), AppID: testAppID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx, mailbox.Errory)
	})
	if _, err := c.Claim(ctx, nameplate); err != nil {
		t.Fatal(err)
	}
	return c
}

// heldBeforeKey is what w holds for the key, in messages and bytes.
func heldBeforeKey(w *Wormhole) (int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.early), w.earlyBytes
}

func wantSpoiled(t *testing.T, err error, nameplate string, crowded bool) {
	t.Helper()
	var se *SpoiledError
	if !errors.Is(err, ErrCodeSpoiled) || !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SpoiledError", err)
	}
	if se.Nameplate != nameplate || se.Crowded != crowded {
		t.Errorf("SpoiledError = %+v, want nameplate %s, crowded %v", se, nameplate, crowded)
	}
	want := "someone else used nameplate " + nameplate + " before your peer: this code is spoiled; start again with a new code"
	if crowded {
		want = "nameplate " + nameplate + " is crowded"
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Error() = %q, want it to say %q", err.Error(), want)
	}
}

// A stranger who claims our nameplate and writes without a pake spoils the
// code at once: nothing it sends is kept.
func TestStrangerFloodSpoilsCode(t *testing.T) {
	server := mailboxtest.New(t)
	a, _ := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	nameplate := codes.Nameplate(code)
	s := stranger(t, server, nameplate)
	body := bytes.Repeat([]byte{'x'}, 64<<10)
	for i := range 16 {
		if err := s.Add(ctx, fmt.Sprint(i), body); err != nil {
			t.Fatal(err)
		}
	}
	_, err = a.Verifier(ctx)
	wantSpoiled(t, err, nameplate, false)
	if n, size := heldBeforeKey(a); n != 0 || size != 0 {
		t.Errorf("a holds %d messages (%d bytes) from the stranger", n, size)
	}
	if err := a.Close(ctx); !errors.Is(err, ErrCodeSpoiled) {
		t.Errorf("Close = %v, want the spoiled code", err)
	}
	if moods := server.Moods(); len(moods) == 0 || moods[0] != "scary" {
		t.Errorf("moods = %v, want a scary close", moods)
	}
}

// Before our code is set (a person still typing it), a stranger's pake is
// held, and only a few messages after it: more spoils the code.
func TestHeldBeforeKeyIsBounded(t *testing.T) {
	server := mailboxtest.New(t)
	a, _ := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.ClaimNameplate(ctx, "5"); err != nil {
		t.Fatal(err)
	}
	s := stranger(t, server, "5")
	pake, err := spake2.NewSymmetric([]byte("5-some-guess"), []byte(testAppID), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"pake_v1": hex.EncodeToString(pake.Message())})
	if err := s.Add(ctx, "pake", body); err != nil {
		t.Fatal(err)
	}
	for i := range 4 * maxHeldBeforeKey {
		if err := s.Add(ctx, fmt.Sprint(i), bytes.Repeat([]byte{'x'}, 1024)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-a.failed:
	case <-ctx.Done():
		n, size := heldBeforeKey(a)
		t.Fatalf("a still runs, holding %d messages (%d bytes) for a key", n, size)
	}
	wantSpoiled(t, a.failure(), "5", false)
	if n, _ := heldBeforeKey(a); n > maxHeldBeforeKey {
		t.Errorf("a held %d messages, more than %d", n, maxHeldBeforeKey)
	}
}

// A second foreign side before the peer is confirmed means the mailbox is
// not private (only a lying server lets a third side in).
func TestSecondForeignSideSpoilsCode(t *testing.T) {
	server := mailboxtest.New(t)
	a, _ := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	pake, _ := spake2.NewSymmetric([]byte(code+"x"), []byte(testAppID), nil)
	body, _ := json.Marshal(map[string]string{"pake_v1": hex.EncodeToString(pake.Message())})
	inject := func(side, phase string, body []byte) {
		frame, _ := json.Marshal(map[string]string{"type": "message", "side": side, "phase": phase, "body": hex.EncodeToString(body)})
		server.Inject(frame)
	}
	// a has not heard from its peer yet; two sides write at once.
	inject("1111111111", "pake", body)
	inject("2222222222", "version", []byte("not a box"))
	_, err = a.Verifier(ctx)
	wantSpoiled(t, err, codes.Nameplate(code), false)
}

// The side that joins a nameplate a stranger took hears "crowded" from the
// server, and is told what it means.
func TestCrowdedJoinerSeesSpoiledCode(t *testing.T) {
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	stranger(t, server, codes.Nameplate(code))
	err = b.SetCode(ctx, code)
	wantSpoiled(t, err, codes.Nameplate(code), true)
	if !errors.Is(err, mailbox.ErrCrowded) {
		t.Errorf("err = %v, want it to wrap the server's crowded", err)
	}
}

// Send refuses what the mailbox could not relay to the peer, and the
// largest message it takes arrives.
func TestMessageSizeBound(t *testing.T) {
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{})
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Send(ctx, make([]byte, MaxMessageSize+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Send over MaxMessageSize = %v, want ErrMessageTooLarge", err)
	}
	big := bytes.Repeat([]byte{'m'}, MaxMessageSize)
	if err := a.Send(ctx, big); err != nil {
		t.Fatal(err)
	}
	got, err := b.Receive(ctx)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Receive = %d bytes, %v; want the %d-byte message", len(got), err, len(big))
	}
}

// What the peer sends and the application does not read is bounded.
func TestUnreadMessagesBounded(t *testing.T) {
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{})
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	chunk := bytes.Repeat([]byte{'u'}, MaxMessageSize)
	for range maxHeldBytes/MaxMessageSize + 1 {
		if err := b.Send(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-a.failed:
	case <-ctx.Done():
		t.Fatal("a holds everything the peer sent")
	}
	var pe *PeerError
	if err := a.failure(); !errors.As(err, &pe) {
		t.Fatalf("a failed with %v, want a *PeerError", err)
	}
}

// A stranger's side longer than mailbox.MaxSideLength is nobody's: its
// messages are dropped before they can spoil the code (or put the side in
// the spoiled code's reason), and the honest peer still gets through.
func TestOverlongStrangerSideIgnored(t *testing.T) {
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	frame, _ := json.Marshal(map[string]string{"type": "message", "side": strings.Repeat("s", 1<<20), "phase": "version", "body": "00"})
	server.Inject(frame) // to both sides: either may be the one it spoils
	notSpoiled := func(who string, err error) {
		t.Helper()
		var se *SpoiledError
		if errors.As(err, &se) {
			t.Fatalf("%s: spoiled by an overlong side; a reason of %d bytes", who, len(se.Reason))
		}
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
	}
	notSpoiled("b", b.SetCode(ctx, code))
	_, err = a.Verifier(ctx)
	notSpoiled("a", err)
}
