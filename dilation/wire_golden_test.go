package dilation

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/*.golden from this run")

// TestWireTowardReferencePeer records what gander sends to a peer that
// announces nothing but "can-dilate" (as the reference does) for a fixed
// script, and compares it with testdata/reference_wire.golden, recorded
// before per-subchannel flow control and the send scheduler existed: toward
// the reference the records stay byte-identical (no new record types, the
// same sequence numbers, splitting and payloads). ACKs are left out of the
// transcript, as how many ride together depends on timing; the last one
// is kept.
func TestWireTowardReferencePeer(t *testing.T) {
	p := dialHostile(t, Config{Side: sideLow}) // the scripted peer leads: no PINGs from gander
	recs := p.collect(t)
	l, err := p.gander.Listen("y")
	if err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	lastAck := int64(-1)
	// next reads gander's records until n sequenced ones arrived.
	next := func(n int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for n > 0 {
			select {
			case rec, ok := <-recs:
				if !ok {
					t.Fatal("connection ended")
				}
				switch r := rec.(type) {
				case ackRecord:
					lastAck = int64(r.seq)
					continue
				case openRecord:
					fmt.Fprintf(&transcript, "OPEN scid=%d seq=%d %q\n", r.scid, r.seq, r.subprotocol)
				case dataRecord:
					fmt.Fprintf(&transcript, "DATA scid=%d seq=%d len=%d sha=%x\n", r.scid, r.seq, len(r.payload), sha256.Sum256(r.payload))
				case closeRecord:
					fmt.Fprintf(&transcript, "CLOSE scid=%d seq=%d\n", r.scid, r.seq)
				default:
					fmt.Fprintf(&transcript, "OTHER %#v\n", rec)
					continue
				}
				n--
			case <-deadline:
				t.Fatalf("gander sent %d records fewer than expected; so far:\n%s", n, transcript.String())
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := p.gander.Open(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	next(2)
	if err := p.send(openRecord{scid: 1, subprotocol: "y"}, dataRecord{scid: 1, payload: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	in, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	in.Write([]byte("pong"))
	next(1)
	in.CloseWrite()
	next(1)
	bulk := make([]byte, 200000)
	for i := range bulk {
		bulk[i] = byte(i * 7)
	}
	if _, err := sc.Write(bulk); err != nil {
		t.Fatal(err)
	}
	next((len(bulk) + maxDataPayload - 1) / maxDataPayload)
	sc.CloseWrite()
	next(1)
	if err := p.send(closeRecord{scid: 1}); err != nil {
		t.Fatal(err)
	}
	// The ACK of the peer's CLOSE (its third record) comes within flushDelay.
	deadline := time.After(5 * time.Second)
	for lastAck < 2 {
		select {
		case rec := <-recs:
			if a, ok := rec.(ackRecord); ok {
				lastAck = int64(a.seq)
			} else {
				fmt.Fprintf(&transcript, "OTHER %#v\n", rec)
			}
		case <-deadline:
			t.Fatalf("no ACK of the peer's CLOSE; last ACK %d", lastAck)
		}
	}
	fmt.Fprintf(&transcript, "last ACK %d\n", lastAck)
	const golden = "testdata/reference_wire.golden"
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(transcript.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := transcript.String(); got != string(want) {
		t.Fatalf("records toward a reference peer changed:\n got:\n%s\nwant:\n%s", got, want)
	}
}
