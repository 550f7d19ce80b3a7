package wormhole_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// Alice allocates a code, Bob types it in; once the key is agreed, both see
// the same verifier and their messages arrive encrypted, in order. (The
// mailbox server runs in the process.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var tb cleanups
	defer tb.run()
	cfg := wormhole.Config{MailboxURL: mailboxtest.New(&tb).URL(), AppID: "example.com/chat"}

	alice, err := wormhole.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer alice.Close(context.Background())
	code, err := alice.AllocateCode(ctx, 2) // e.g. "7-guitarist-revenge"
	if err != nil {
		panic(err)
	}

	bob, err := wormhole.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer bob.Close(context.Background())
	if err := bob.SetCode(ctx, code); err != nil {
		panic(err)
	}

	if err := alice.Send(ctx, []byte("hello, Bob")); err != nil {
		panic(err)
	}
	msg, err := bob.Receive(ctx)
	if err != nil {
		panic(err)
	}
	va, _ := alice.Verifier(ctx)
	vb, _ := bob.Verifier(ctx)
	fmt.Printf("%s; same verifier: %v\n", msg, bytes.Equal(va, vb))
	// Output: hello, Bob; same verifier: true
}

// cleanups is the part of testing.TB that mailboxtest.New uses, so that
// the example can run its server outside a test.
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
