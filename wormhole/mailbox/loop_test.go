package mailbox

import (
	"errors"
	"log/slog"
	"strconv"
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
