// Package dilationtest provides dilated connections for tests: two peers
// sharing a code over a fake mailbox (mailboxtest) or a real one, and an
// echo service on subchannels.
package dilationtest

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// AppID is the application id the peers use unless App says otherwise.
const AppID = "gander.test/dilation"

type options struct {
	mailboxURL  string
	appID       string
	appVersions map[string]any
	timeout     time.Duration
}

// Option adjusts Pair, Join or Dilate.
type Option func(*options)

// Mailbox makes the peers meet on the mailbox server at url rather than
// on a new mailboxtest server.
func Mailbox(url string) Option { return func(o *options) { o.mailboxURL = url } }

// App makes the peers use the application id and app_versions of an
// application (such as forwards.AppID and forwards.AppVersions()), so that
// they pass for it.
func App(id string, versions map[string]any) Option {
	return func(o *options) { o.appID, o.appVersions = id, versions }
}

// Timeout bounds each step (joining, dilating) instead of 20 seconds.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

func settle(opts []Option) options {
	o := options{appID: AppID, timeout: 20 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Pair makes two wormholes that share a code and dilates both, a with
// cfgA and b with cfgB. Both connections and wormholes are closed when the
// test ends.
func Pair(t testing.TB, cfgA, cfgB dilation.Config, opts ...Option) (a, b *dilation.Conn) {
	t.Helper()
	o := settle(opts)
	if o.mailboxURL == "" {
		opts = append(opts, Mailbox(mailboxtest.New(t).URL()))
	}
	wa, code := Join(t, "", opts...)
	wb, _ := Join(t, code, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = dilation.Dilate(ctx, wa, cfgA) }()
	go func() { defer wg.Done(); b, errB = dilation.Dilate(ctx, wb, cfgB) }()
	wg.Wait()
	for _, c := range []*dilation.Conn{a, b} {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if errA != nil || errB != nil {
		t.Fatalf("dilate: %v / %v", errA, errB)
	}
	return a, b
}

// Join makes a wormhole on the Mailbox option's server (which it needs),
// allocating a code if code is "" and otherwise setting it, and returns it
// with the code once the code is set; Dilate finishes. The wormhole is
// closed when the test ends.
func Join(t testing.TB, code string, opts ...Option) (*wormhole.Wormhole, string) {
	t.Helper()
	o := settle(opts)
	if o.mailboxURL == "" {
		t.Fatal("dilationtest.Join needs the Mailbox option")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	w, err := wormhole.New(ctx, wormhole.Config{
		MailboxURL: o.mailboxURL, AppID: o.appID, AppVersions: o.appVersions,
		VersionExtra: dilation.GanderVersionFields(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Close(ctx)
	})
	if code == "" {
		code, err = w.AllocateCode(ctx, 2)
	} else {
		err = w.SetCode(ctx, code)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w, code
}

// Dilate dilates w with cfg; the connection is closed when the test ends.
// Only the options' Timeout applies. On failure it calls Fatal: when it
// runs on a goroutine of its own, the caller finds a nil connection and
// the test already failed.
func Dilate(t testing.TB, w *wormhole.Wormhole, cfg dilation.Config, opts ...Option) *dilation.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle(opts).timeout)
	defer cancel()
	c, err := dilation.Dilate(ctx, w, cfg)
	if err != nil {
		t.Fatalf("dilate: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Echo serves every subchannel of proto that c's peer opens by copying it
// back, until c closes.
func Echo(t testing.TB, c *dilation.Conn, proto string) {
	t.Helper()
	Serve(t, c, proto, func(sc *dilation.Subchannel) { io.Copy(sc, sc) })
}

// Sink serves every subchannel of proto that c's peer opens by reading it
// to its end and discarding what comes (a one-way stream's far end), until
// c closes.
func Sink(t testing.TB, c *dilation.Conn, proto string) {
	t.Helper()
	Serve(t, c, proto, func(sc *dilation.Subchannel) { io.Copy(io.Discard, sc) })
}

// Serve accepts every subchannel of proto that c's peer opens and hands
// each to handle on a goroutine of its own, closing it once handle
// returns. Accepting stops when c closes.
func Serve(t testing.TB, c *dilation.Conn, proto string, handle func(*dilation.Subchannel)) {
	t.Helper()
	l, err := c.Listen(proto)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			sc, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				handle(sc)
				sc.Close()
			}()
		}
	}()
}
