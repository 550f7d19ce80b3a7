package wormhole

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gander-pair/gander/wormhole/codes"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

const testAppID = "gander.test/wormhole"

func newPair(t *testing.T, server *mailboxtest.Server, cfg Config) (a, b *Wormhole) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.MailboxURL = server.URL()
	cfg.AppID = testAppID
	cfg.ReconnectBackoff = 20 * time.Millisecond
	var err error
	if a, err = New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if b, err = New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
		b.Close(ctx)
	})
	return a, b
}

func connect(t *testing.T, a, b *Wormhole) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := a.AllocateCode(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := codes.Parse(code); err != nil || codes.CheckWords(code) != nil {
		t.Fatalf("allocated code %q is not a valid 3-word code", code)
	}
	if err := b.SetCode(ctx, code); err != nil {
		t.Fatal(err)
	}
}

func TestExchangeOverFakeMailbox(t *testing.T) {
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{
		AppVersions:  map[string]any{"gander": "test"},
		VersionExtra: map[string]any{"can-dilate": []string{"ged"}},
	})
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if v := sameVerifiers(t, ctx, a, b); len(v) != 32 {
		t.Fatalf("verifier %x, want 32 bytes", v)
	}
	version, err := b.PeerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(version["can-dilate"]) != `["ged"]` || string(version["app_versions"]) != `{"gander":"test"}` {
		t.Fatalf("peer version = %v", version)
	}

	for i := range 20 {
		if err := a.Send(ctx, fmt.Appendf(nil, "app %d", i)); err != nil {
			t.Fatal(err)
		}
		if err := a.SendDilation(ctx, fmt.Appendf(nil, "dilate %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		expectMessage(t, ctx, b.Receive, fmt.Sprintf("app %d", i))
		expectMessage(t, ctx, b.ReceiveDilation, fmt.Sprintf("dilate %d", i))
	}

	ka, _ := a.DeriveKey("purpose", 16)
	kb, _ := b.DeriveKey("purpose", 16)
	if !bytes.Equal(ka, kb) {
		t.Fatal("derived keys differ")
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("close a: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("close b: %v", err)
	}
	if moods := server.Moods(); len(moods) != 2 || moods[0] != "happy" || moods[1] != "happy" {
		t.Fatalf("moods = %v, want two happy", moods)
	}
}

// sameVerifiers waits for both sides' verifiers and fails the test unless
// they are equal; it returns a's.
func sameVerifiers(t *testing.T, ctx context.Context, a, b *Wormhole) []byte {
	t.Helper()
	va, err := a.Verifier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Verifier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(va, vb) {
		t.Fatalf("verifiers differ: %x / %x", va, vb)
	}
	return va
}

func expectMessage(t *testing.T, ctx context.Context, receive func(context.Context) ([]byte, error), want string) {
	t.Helper()
	got, err := receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("received %q, want %q", got, want)
	}
}

func TestWrongCodeFailsBothSidesQuickly(t *testing.T) {
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.SetCode(ctx, "4-purple-sausages"); err != nil {
		t.Fatal(err)
	}
	// b may learn it at once: a's version message can have come while
	// b sent its pake, and SetCode reports what went wrong.
	if err := b.SetCode(ctx, "4-purple-sausage"); err != nil && !errors.Is(err, ErrWrongCode) {
		t.Fatal(err)
	}
	start := time.Now()
	for name, w := range map[string]*Wormhole{"a": a, "b": b} {
		if _, err := w.Receive(ctx); !errors.Is(err, ErrWrongCode) {
			t.Errorf("%s: Receive = %v, want ErrWrongCode", name, err)
		}
		if err := w.Close(ctx); !errors.Is(err, ErrWrongCode) {
			t.Errorf("%s: Close = %v, want ErrWrongCode", name, err)
		}
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("wrong code took %v to detect", elapsed)
	}
	if moods := server.Moods(); len(moods) != 2 || moods[0] != "scary" || moods[1] != "scary" {
		t.Errorf("moods = %v, want two scary", moods)
	}
}

func TestCloseBeforePeerIsLonely(t *testing.T) {
	server := mailboxtest.New(t)
	a, _ := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.AllocateCode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); !errors.Is(err, ErrLonely) {
		t.Fatalf("Close = %v, want ErrLonely", err)
	}
	if err := a.Send(ctx, []byte("late")); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}

func TestMessagesSurviveMailboxReconnects(t *testing.T) {
	server := mailboxtest.New(t)
	a, b := newPair(t, server, Config{})
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 30 {
		if i%5 == 0 {
			server.DropConnections()
		}
		if err := a.Send(ctx, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		expectMessage(t, ctx, b.Receive, fmt.Sprint(i))
	}
}

func TestMalformedPakeScaresThePeer(t *testing.T) {
	server := mailboxtest.New(t)
	a, _ := newPair(t, server, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	// A hostile peer in the mailbox sends a pake without pake_v1.
	intruder, err := New(ctx, Config{MailboxURL: server.URL(), AppID: testAppID})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close(ctx)
	mailboxID, err := intruder.mb.Claim(ctx, codes.Nameplate(code))
	if err != nil || mailboxID == "" {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"not_pake": "x"})
	if err := intruder.mb.Add(ctx, "pake", body); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verifier(ctx); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("Verifier = %v, want ErrWrongCode", err)
	}
}
