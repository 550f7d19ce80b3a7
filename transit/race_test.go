package transit

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func loopback(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestAwaitRelay(t *testing.T) {
	line := RelayHandshake([]byte("k"), "0123456789abcdef")
	for _, tt := range []struct {
		answer string
		check  func(error) bool
	}{
		{"ok\nrest", func(err error) bool { return err == nil }},
		{"okay\n", func(err error) bool {
			var u *UnexpectedRelayAnswer
			return errors.As(err, &u) && string(u.Got) == "oka"
		}},
		{"", func(err error) bool { return err != nil && !errors.Is(err, ErrNoPartnerAtRelay) }},
	} {
		a, b := loopback(t)
		go func() {
			bufio.NewReader(b).ReadString('\n')
			b.Write([]byte(tt.answer))
			if tt.answer == "" {
				b.Close()
			}
		}()
		r := bufio.NewReader(a)
		announced := false
		err := AwaitRelay(a, r, line, func() { announced = true }, 5*time.Second)
		if !tt.check(err) || !announced {
			t.Errorf("answer %q: err = %v, announced %v", tt.answer, err, announced)
		}
		if err == nil {
			// What follows "ok\n" is left for the caller's handshake.
			if rest, _ := r.Peek(4); string(rest) != "rest" {
				t.Errorf("after ok: %q", rest)
			}
		}
	}
}

// A relay that never answers (the peer never came) is given up on.
func TestAwaitRelayWithoutPartner(t *testing.T) {
	a, _ := loopback(t)
	start := time.Now()
	err := AwaitRelay(a, bufio.NewReader(a), "please relay x for side y\n", nil, 200*time.Millisecond)
	if !errors.Is(err, ErrNoPartnerAtRelay) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v, want ErrNoPartnerAtRelay", err, time.Since(start))
	}
}

func TestBackoffIsCapped(t *testing.T) {
	var b backoff
	for i := range 20 {
		d := b.delay()
		if d > time.Duration(float64(RetryCap)*(1+RetryJitter)) || d < time.Duration(float64(RetryInitial)*(1-RetryJitter)) {
			t.Fatalf("delay %d = %v", i, d)
		}
	}
	b.reset()
	if d := b.delay(); d > time.Duration(float64(RetryInitial)*(1+RetryJitter)) {
		t.Fatalf("after reset: %v", d)
	}
}

// A hint that refuses is retried, each failure an AttemptFailed, until
// it accepts; Stop ends a handshake under way, and Wait returns.
func TestRaceRetriesUntilAHintAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // refused for now
	events := make(chan Event)
	var handshakes atomic.Int32
	r, own := StartRace(RaceConfig[net.Conn]{
		ID: 7, NoListen: true, Events: events,
		Handshake: func(conn net.Conn, a Attempt) (net.Conn, error) {
			handshakes.Add(1)
			return conn, nil
		},
	})
	defer func() { r.Stop(); r.Wait() }()
	if len(own) != 0 {
		t.Fatalf("hints %v with NoListen and no relay", own)
	}
	r.AddHints([]Hint{{Host: "127.0.0.1", Port: addr.Port}})
	failures := 0
	for failures < 2 {
		ev := <-events
		f, ok := ev.(AttemptFailed)
		if !ok || f.ID != 7 || f.Err.Relay || !strings.HasPrefix(f.Err.Via, "direct 127.0.0.1:") {
			t.Fatalf("event %#v", ev)
		}
		failures++
	}
	ln, err = net.Listen("tcp", addr.String())
	if err != nil {
		t.Skip("port taken meanwhile:", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	r.RetryNow()
	for ev := range events {
		if sel, ok := ev.(Selected[net.Conn]); ok {
			if sel.ID != 7 || sel.Attempt.Inbound || sel.Attempt.Hint.Port != addr.Port {
				t.Fatalf("selected %#v", sel)
			}
			sel.Result.Close()
			break
		}
	}
	if n := handshakes.Load(); n != 1 {
		t.Fatalf("%d handshakes, want 1", n)
	}
}

// A Select that fails discards the result and the race goes on: the next
// connection is selected.
func TestRaceGoesOnWhenSelectFails(t *testing.T) {
	events := make(chan Event, 16)
	var selects, discards atomic.Int32
	r, hints := StartRace(RaceConfig[net.Conn]{
		ID: 1, Events: events,
		Handshake: func(conn net.Conn, a Attempt) (net.Conn, error) { return conn, nil },
		Select: func(c net.Conn) error {
			if selects.Add(1) == 1 {
				return errors.New("first one fails")
			}
			return nil
		},
		Discard: func(c net.Conn) { discards.Add(1); c.Close() },
	})
	defer func() { r.Stop(); r.Wait() }()
	if len(hints) == 0 {
		t.Fatal("no direct hints")
	}
	for range 2 {
		c, err := net.Dial("tcp", hints[0].Address())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if sel, ok := ev.(Selected[net.Conn]); ok {
				if !sel.Attempt.Inbound || selects.Load() != 2 || discards.Load() != 1 {
					t.Fatalf("selected %#v after %d selects, %d discards", sel, selects.Load(), discards.Load())
				}
				sel.Result.Close()
				return
			}
		case <-deadline:
			t.Fatal("nothing selected")
		}
	}
}

// Stop closes the connections still handshaking, so that a handshake
// blocked on its connection returns, and Wait awaits it.
func TestRaceStopEndsHandshakes(t *testing.T) {
	started := make(chan struct{}, 1)
	r, hints := StartRace(RaceConfig[net.Conn]{
		Events: make(chan Event),
		Handshake: func(conn net.Conn, a Attempt) (net.Conn, error) {
			started <- struct{}{}
			_, err := conn.Read(make([]byte, 1)) // the peer says nothing
			return nil, err
		},
	})
	c, err := net.Dial("tcp", hints[0].Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-started
	r.Stop()
	done := make(chan struct{})
	go func() { r.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Stop")
	}
}

func FuzzParseHints(f *testing.F) {
	for _, s := range []string{
		`{"type":"direct-tcp-v1","priority":0,"hostname":"1.2.3.4","port":1234}`,
		`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"r","port":4001}]}`,
		`{"type":"tor-tcp-v1","hostname":"x.onion","port":1}`,
		`[]`, `null`, `{"type":"relay-v1","hints":[1,"x",null]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, h := range ParseHints(raws(s)) {
			if h.Host == "" || h.Port <= 0 || h.Port > 65535 {
				t.Fatalf("kept an undiallable hint %+v from %q", h, s)
			}
			// What gander keeps, it encodes and reads back the same.
			if back := ParseHints(EncodeHints([]Hint{h})); len(back) != 1 || back[0] != h {
				t.Fatalf("%+v came back as %+v", h, back)
			}
		}
	})
}
