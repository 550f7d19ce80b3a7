package wormhole

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gander-pair/gander/wormhole/mailbox"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
	"github.com/gander-pair/gander/wormhole/spake2"
)

// williamExchange is one exchange between gander (receiving) and Debian's
// wormhole-william 1.0.6 (sending) caught failing "wrong code" in
// TestClassicFromWilliamRepeated, once in about 256 transfers: gander's 64
// random bytes, wormhole-william's side, pake and version message as the
// mailbox relayed them, and the keys (see spake2.Symmetric.FinishCompat):
// the reference's, and the one wormhole-william derived, which opens its
// version.
var williamExchange = struct {
	appID, code, seed, side, pake, version, key, williamKey string
}{
	appID:      "lothar.com/wormhole/text-or-file-xfer",
	code:       "2-belowground-spaniel",
	seed:       "331fec30f09d39d22677d2baf0aec672aa2a2b3b1a5c0ecdd7ff63ffc18c75aac550fa81a0ac4455434628922ae0b54cb3ca15932c97a0f87c5db42313bebce3",
	side:       "d67def916e",
	pake:       `{"pake_v1":"53c58a9592eb7841cf86fc285ae71433b35f4afb19a7f4608a8d6dbd37e4f4e57f"}`,
	version:    "8e6e89ffa77ee67f5a3d4783d234fa8035800bbd4b3ea2c8f479f483e7f9b1a9b60dbf6bc32d35f6065708c6e3820ff2a3fd102019973f4d4fb763",
	key:        "5fc4f3d953058fbed24ff8a97b659da7c94ce67005ad3a62e68a04e3f0590545",
	williamKey: "8bfec69d485b0ed07b7a3ff4f78b8b5b6e33eec0eb4df8cedb2739577032ae84",
}

func mustUnhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replayPeer plays the other side of williamExchange through server: it
// claims the nameplate and writes the pake, waits for gander's pake, and
// writes sealVersion's result as its version (after our pake, as
// wormhole-william and the reference do). It returns gander's version.
func replayPeer(t *testing.T, ctx context.Context, server *mailboxtest.Server, sealVersion func() []byte) <-chan []byte {
	t.Helper()
	peer, err := mailbox.Dial(ctx, mailbox.Config{URL: server.URL(), AppID: williamExchange.appID, Side: williamExchange.side})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		peer.Close(ctx, mailbox.Happy)
	})
	if _, err := peer.Claim(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	if err := peer.Add(ctx, "pake", []byte(williamExchange.pake)); err != nil {
		t.Fatal(err)
	}
	version := make(chan []byte, 1)
	go func() {
		defer close(version)
		for {
			select {
			case m := <-peer.Messages():
				switch m.Phase {
				case "pake":
					peer.Add(ctx, "version", sealVersion())
				case "version":
					version <- m.Body
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return version
}

func replayGander(t *testing.T, ctx context.Context, server *mailboxtest.Server) *Wormhole {
	t.Helper()
	w, err := New(ctx, Config{MailboxURL: server.URL(), AppID: williamExchange.appID,
		random: bytes.NewReader(mustUnhex(t, williamExchange.seed))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Close(ctx)
	})
	if err := w.SetCode(ctx, williamExchange.code); err != nil {
		t.Fatal(err)
	}
	return w
}

// checkSettledOn checks that w confirmed the peer under key: its verifier
// comes from key and its version (the body the peer got) opens under it.
func checkSettledOn(t *testing.T, ctx context.Context, w *Wormhole, ganderVersion <-chan []byte, key []byte) {
	t.Helper()
	verifier, err := w.Verifier(ctx)
	if err != nil {
		t.Fatalf("Verifier: %v", err)
	}
	if want := DeriveKey(key, "wormhole:verifier", 32); !bytes.Equal(verifier, want) {
		t.Errorf("verifier %x, want %x (from key %x)", verifier, want, key)
	}
	var body []byte
	select {
	case body = <-ganderVersion:
	case <-ctx.Done():
		t.Fatal("gander's version never came")
	}
	plain, err := open(phaseKey(key, w.mb.Side(), "version"), body)
	if err != nil {
		t.Fatalf("gander's version does not open under key %x: %v", key, err)
	}
	var version map[string]json.RawMessage
	if err := json.Unmarshal(plain, &version); err != nil || version["app_versions"] == nil {
		t.Errorf("gander's version is %q", plain)
	}
}

// wormhole-william's rare other key (its SPAKE2, gospake2 0.2.1, drops a
// zero byte from K's encoding): gander holds its version, sees the peer's
// open under that key, and settles on it, so both sides agree. Before, it
// said "wrong code" and wormhole-william "decrypt message failed".
func TestWilliamsOtherKeyIsAccepted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := mailboxtest.New(t)
	ganderVersion := replayPeer(t, ctx, server, func() []byte { return mustUnhex(t, williamExchange.version) })
	w := replayGander(t, ctx, server)
	checkSettledOn(t, ctx, w, ganderVersion, mustUnhex(t, williamExchange.williamKey))
}

// The reference (and an earlier gander) derives the shared key in that same
// exchange, and gander keeps it.
func TestReferenceKeyKeptWhenWilliamsDiffers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := mailboxtest.New(t)
	key := mustUnhex(t, williamExchange.key)
	ganderVersion := replayPeer(t, ctx, server, func() []byte {
		return seal(phaseKey(key, williamExchange.side, "version"), []byte(`{"app_versions":{}}`))
	})
	w := replayGander(t, ctx, server)
	checkSettledOn(t, ctx, w, ganderVersion, key)
}

// A stranger whose version opens under neither key is a wrong code, as
// ever: the second key is no second guess at the password.
func TestNeitherKeyIsWrongCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := mailboxtest.New(t)
	other := bytes.Repeat([]byte{7}, 32)
	replayPeer(t, ctx, server, func() []byte {
		return seal(phaseKey(other, williamExchange.side, "version"), []byte(`{"app_versions":{}}`))
	})
	w := replayGander(t, ctx, server)
	if _, err := w.Verifier(ctx); err != ErrWrongCode {
		t.Fatalf("Verifier: %v, want ErrWrongCode", err)
	}
}

// Two ganders in such an exchange both hold their versions; the wait runs
// out on both, they send the reference's and agree.
func TestTwoGandersBothHoldingTheirVersions(t *testing.T) {
	defer func(d time.Duration) { peerVersionWait = d }(peerVersionWait)
	peerVersionWait = 200 * time.Millisecond
	const code = "5-doubtful-keys"
	seedA := sha512.Sum512([]byte("a"))
	var seedB [64]byte
	for i := 0; ; i++ { // about 256 tries
		seedB = sha512.Sum512(fmt.Appendf(nil, "b-%d", i))
		a, _ := spake2.NewSymmetric([]byte(code), []byte(testAppID), bytes.NewReader(seedA[:]))
		b, _ := spake2.NewSymmetric([]byte(code), []byte(testAppID), bytes.NewReader(seedB[:]))
		if _, alt, err := a.FinishCompat(b.Message()); err != nil {
			t.Fatal(err)
		} else if alt != nil {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{})
	a.cfg.random, b.cfg.random = bytes.NewReader(seedA[:]), bytes.NewReader(seedB[:])
	start := time.Now()
	if err := a.SetCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if err := b.SetCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	sameVerifiers(t, ctx, a, b)
	if took := time.Since(start); took < peerVersionWait {
		t.Errorf("confirmed after %v, before the %v wait ran out: was the key in doubt?", took, peerVersionWait)
	}
}
