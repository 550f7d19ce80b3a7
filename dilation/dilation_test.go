package dilation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// PairForTests, EchoForTests and SinkForTests are dilationtest's Pair,
// Echo and Sink, which this package's own tests cannot import
// (dilationtest imports dilation): hooks_test.go, an external test file,
// sets them.
var (
	PairForTests func(t testing.TB, cfgA, cfgB Config) (a, b *Conn)
	EchoForTests func(t testing.TB, c *Conn, proto string)
	SinkForTests func(t testing.TB, c *Conn, proto string)
)

// pair makes two wormholes that share a code over a fake mailbox and
// dilates both.
func pair(t testing.TB, cfgA, cfgB Config) (a, b *Conn) {
	t.Helper()
	return PairForTests(t, cfgA, cfgB)
}

// echo serves every subchannel of proto on c by copying it back.
func echo(t testing.TB, c *Conn, proto string) {
	t.Helper()
	EchoForTests(t, c, proto)
}

// sink serves every subchannel of proto on c by reading it to its end.
func sink(t testing.TB, c *Conn, proto string) {
	t.Helper()
	SinkForTests(t, c, proto)
}

// roundTrip writes size random bytes on a new subchannel and checks that
// the echo matches.
func roundTrip(t *testing.T, c *Conn, proto string, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc, err := c.Open(ctx, proto)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	go func() {
		sc.Write(data)
		sc.CloseWrite()
	}()
	got, err := io.ReadAll(sc)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echo of %d bytes came back as %d different bytes", size, len(got))
	}
	sc.Close()
}

func TestSubchannelsBothWays(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	if a.Status().Leader == b.Status().Leader {
		t.Fatal("both sides think they lead")
	}
	echo(t, a, "echo")
	echo(t, b, "echo")
	roundTrip(t, a, "echo", 3<<20)
	roundTrip(t, b, "echo", 3<<20)
	roundTrip(t, a, "echo", 0)
}

func TestReconnectsAfterConnectionCuts(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	echo(t, b, "echo")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			time.Sleep(100 * time.Millisecond)
			for _, c := range []*Conn{a, b} {
				c.m.do(func() {
					if c.m.link != nil {
						c.m.link.close()
					}
				})
			}
		}
	}()
	roundTrip(t, a, "echo", 32<<20)
	<-done
	if g := a.Status().Generation; g < 2 {
		t.Errorf("generation %d after cuts, want more than 1", g)
	}
}

func TestWritesAfterCloseFail(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	echo(t, b, "echo")
	sc, err := a.Open(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	sc.CloseWrite()
	if _, err := sc.Write([]byte("x")); !errors.Is(err, ErrClosedWrite) {
		t.Fatalf("write after CloseWrite = %v", err)
	}
	a.Close()
	if _, err := sc.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// BenchmarkSubchannelThroughput is one subchannel's one-way throughput
// between two in-process peers over loopback TCP (for profiling; the e2e
// benchmark compares it with raw TCP and the Python reference).
func BenchmarkSubchannelThroughput(b *testing.B) {
	a, peer := pair(b, Config{}, Config{})
	benchThroughput(b, a, peer)
}

func TestSlowReaderPausesTheSender(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	l, err := b.Listen("slow")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := a.Open(context.Background(), "slow")
	if err != nil {
		t.Fatal(err)
	}
	const total = 64 << 20
	var written atomic.Int64
	writeDone := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for written.Load() < total {
			n, err := sc.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				writeDone <- err
				return
			}
		}
		writeDone <- sc.CloseWrite()
	}()
	peer, err := l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads: the sender must stall with a bounded amount in flight.
	time.Sleep(500 * time.Millisecond)
	stalled := written.Load()
	time.Sleep(300 * time.Millisecond)
	if now := written.Load(); now != stalled || now >= total {
		t.Fatalf("sender kept writing (%d then %d bytes) while the reader was stopped", stalled, now)
	}
	peer.mu.Lock()
	buffered := peer.buffered
	peer.mu.Unlock()
	if buffered > subchannelBufferLimit+maxDataPayload {
		t.Fatalf("receiver buffered %d bytes, over its limit", buffered)
	}
	t.Logf("sender stalled after %d MiB; receiver holds %d KiB", stalled>>20, buffered>>10)
	n, err := io.Copy(io.Discard, peer)
	if err != nil || n != total {
		t.Fatalf("reader got %d bytes, %v; want %d", n, err, total)
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
}

func TestCloseWakesAStalledWrite(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	l, err := b.Listen("stall")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := a.Open(context.Background(), "stall")
	if err != nil {
		t.Fatal(err)
	}
	writeDone := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := sc.Write(chunk); err != nil {
				writeDone <- err
				return
			}
		}
	}()
	if _, err := l.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Nobody reads, so the writer stalls; Close must release it.
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-writeDone:
		t.Fatalf("write failed before Close: %v", err)
	default:
	}
	sc.Close()
	select {
	case err := <-writeDone:
		if !errors.Is(err, ErrClosedWrite) {
			t.Fatalf("stalled write returned %v, want ErrClosedWrite", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write stalled on flow control was not woken by Close")
	}
}

func TestUnexpectedSubprotocolIsRefused(t *testing.T) {
	a, b := pair(t, Config{}, Config{ExpectedSubprotocols: []string{"echo"}})
	echo(t, b, "echo")
	sc, err := a.Open(context.Background(), "not-wanted")
	if err != nil {
		t.Fatal(err)
	}
	sc.Write([]byte("hello?"))
	// The refusal is the peer's CLOSE: our read side ends at once.
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(sc)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("read after refusal: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no CLOSE for an unexpected subprotocol")
	}
	roundTrip(t, a, "echo", 1000) // the connection itself is fine
}

func TestStatusUpdatesFollowReconnection(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	if st := a.Status(); st.State != Connected || st.Generation != 1 || st.Via == "" {
		t.Fatalf("status after dilating = %+v", st)
	}
	b.m.do(func() { b.m.link.close() })
	deadline := time.After(20 * time.Second)
	sawReconnecting := false
	for {
		select {
		case st := <-a.StatusUpdates():
			sawReconnecting = sawReconnecting || st.State == Reconnecting
			if st.State == Connected && st.Generation >= 2 {
				if !sawReconnecting {
					t.Log("the reconnection was too quick to be seen as a separate update")
				}
				return
			}
		case <-deadline:
			t.Fatalf("no reconnection; status %+v", a.Status())
		}
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	testkit.CheckNoLeaks(t)
	a, b := pair(t, Config{}, Config{})
	echo(t, b, "echo")
	roundTrip(t, a, "echo", 1<<20)
}
