package terminal

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

func TestStreamConnCarriesAGuest(t *testing.T) {
	testkit.CheckNoLeaks(t)
	h, _, evs := startHost(t, false)
	a, b := net.Pipe()
	attached := make(chan error, 1)
	go func() { attached <- h.Attach(context.Background(), NewStreamConn(a)) }()
	guest := NewStreamConn(b)
	defer guest.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if m, err := guest.ReadMessage(ctx); err != nil || m != (WinSize{Cols: 80, Rows: 24}) {
		t.Fatalf("first message %#v, %v", m, err)
	}
	go guest.WriteMessage(ctx, Write{Data: []byte("over a stream\r")})
	readUntil(t, guest, "over a stream")
	guest.Close()
	if err := <-attached; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("Attach ended with %v", err)
	}
	evs.waitFor(t, func(ev Event) bool { _, ok := ev.(GuestLeft); return ok })
}

func TestStreamConnRefusesOversizedFrames(t *testing.T) {
	testkit.CheckNoLeaks(t)
	a, b := net.Pipe()
	c := NewStreamConn(a)
	defer c.Close()
	go func() {
		var head [4]byte
		binary.BigEndian.PutUint32(head[:], MaxMessageBytes+1)
		b.Write(head[:])
		b.Close()
	}()
	if _, err := c.ReadMessage(context.Background()); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("ReadMessage = %v, want ErrBadMessage", err)
	}
}
