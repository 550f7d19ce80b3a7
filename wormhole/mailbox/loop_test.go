package mailbox

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// The phases remembered to deliver each once are bounded: a mailbox that
// relays more distinct ones ends the session.
func TestDistinctPhasesBounded(t *testing.T) {
	l := &loop{
		client:     &Client{cfg: Config{Side: "us"}, log: slog.New(slog.DiscardHandler)},
		seenPhases: map[string]bool{},
	}
	for i := range maxPhases {
		if err := l.receive(Message{Side: "peer", Phase: strconv.Itoa(i)}); err != nil {
			t.Fatalf("phase %d: %v", i, err)
		}
		l.outbox = nil // as if delivered
	}
	var le *LimitError
	if err := l.receive(Message{Side: "peer", Phase: "one too many"}); !errors.As(err, &le) {
		t.Fatalf("phase %d: %v, want *LimitError", maxPhases, err)
	}
}

// A side longer than MaxSideLength is no client's: its messages are
// dropped, and the side itself, which whoever claimed the nameplate
// chooses, is never logged or kept.
func TestOverlongSideDropped(t *testing.T) {
	var logged bytes.Buffer
	l := &loop{
		client:     &Client{cfg: Config{Side: "us"}, log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		seenPhases: map[string]bool{},
	}
	long := strings.Repeat("s", MaxSideLength+1)
	for _, m := range []Message{
		{Side: long, Phase: "pake"},
		{Side: long, Phase: strings.Repeat("p", MaxPhaseLength+1)},
		{Side: "peer", Phase: strings.Repeat("p", MaxPhaseLength+1)},
	} {
		if err := l.receive(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.outbox) != 0 {
		t.Fatalf("delivered %d messages with an overlong side or phase", len(l.outbox))
	}
	if strings.Contains(logged.String(), "sss") || strings.Contains(logged.String(), "peer") {
		t.Fatalf("the log names the side: %q", logged.String())
	}
	longest := strings.Repeat("s", MaxSideLength)
	if err := l.receive(Message{Side: longest, Phase: "pake"}); err != nil || len(l.outbox) != 1 {
		t.Fatalf("a side of %d bytes was not delivered (%v)", MaxSideLength, err)
	}
}
