package dilation_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// Two wormholes that share a code dilate, and one side's subchannel
// reaches the other's listener. (The mailbox server runs in the process;
// with no relay configured, the peers connect directly.)
func ExampleDilate() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mailboxURL, stopMailbox := exampleMailbox()
	defer stopMailbox()

	cfg := wormhole.Config{MailboxURL: mailboxURL, AppID: "example.com/dilation", VersionExtra: dilation.VersionFields()}
	alice, err := wormhole.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer alice.Close(context.Background())
	bob, err := wormhole.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer bob.Close(context.Background())
	code, err := alice.AllocateCode(ctx, 2)
	if err != nil {
		panic(err)
	}
	if err := bob.SetCode(ctx, code); err != nil { // as if typed in
		panic(err)
	}

	// Both sides dilate at once; Dilate returns once connected.
	bobConn := make(chan *dilation.Conn)
	go func() {
		c, err := dilation.Dilate(ctx, bob, dilation.Config{})
		if err != nil {
			panic(err)
		}
		bobConn <- c
	}()
	a, err := dilation.Dilate(ctx, alice, dilation.Config{})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	b := <-bobConn
	defer b.Close()

	// Bob listens for "greeting" subchannels; Alice opens one.
	l, err := b.Listen("greeting")
	if err != nil {
		panic(err)
	}
	sc, err := a.Open(ctx, "greeting")
	if err != nil {
		panic(err)
	}
	fmt.Fprint(sc, "hello, Bob")
	sc.Close() // what was written still arrives, then EOF

	in, err := l.Accept(ctx)
	if err != nil {
		panic(err)
	}
	got, _ := io.ReadAll(in)
	in.Close()
	fmt.Printf("%s over %s\n", got, b.Status().State)
	// Output: hello, Bob over connected
}

// exampleMailbox starts the test mailbox server outside a test: it only
// needs somewhere to register its cleanup.
func exampleMailbox() (url string, stop func()) {
	var tb cleanups
	s := mailboxtest.New(&tb)
	return s.URL(), tb.run
}

// cleanups is the part of testing.TB that mailboxtest.New uses.
type cleanups struct {
	testing.TB
	fs []func()
}

func (c *cleanups) Cleanup(f func()) { c.fs = append(c.fs, f) }
func (c *cleanups) Helper()          {}

func (c *cleanups) run() {
	for i := len(c.fs) - 1; i >= 0; i-- {
		c.fs[i]()
	}
}
