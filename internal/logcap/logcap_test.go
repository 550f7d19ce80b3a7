package logcap

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestLogger(limits Limits) (*slog.Logger, *Handler, *bytes.Buffer, *fakeClock) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	limits.now = clock.Now
	var buf bytes.Buffer
	h := New(&buf, limits, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), h, &buf, clock
}

func lines(buf *bytes.Buffer) []string {
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven " + Ellipsis},
		// Two bytes a rune: with the 3-byte ellipsis only one fits in 6.
		{"ééééé", 6, "é" + Ellipsis},
	} {
		if got := Truncate(tt.in, tt.max); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
	for n := range 20 {
		if got := Truncate(strings.Repeat("日", 10), n); len(got) > max(n, len(Ellipsis)) || !utf8.ValidString(got) {
			t.Errorf("Truncate to %d = %q", n, got)
		}
	}
}

// The token bucket: Burst lines, then LinesPerSecond; one line counts the
// suppressed ones when lines pass again, and Close reports the rest.
func TestRateLimit(t *testing.T) {
	logger, h, buf, clock := newTestLogger(Limits{LinesPerSecond: 10, Burst: 5})
	for range 20 {
		logger.Info("event")
	}
	if got := strings.Count(buf.String(), "msg=event"); got != 5 {
		t.Fatalf("%d lines of the burst written, want 5", got)
	}
	clock.Advance(500 * time.Millisecond) // 5 tokens
	for range 20 {
		logger.Info("event")
	}
	out := lines(buf)
	if got := strings.Count(buf.String(), "msg=event"); got != 10 {
		t.Fatalf("%d lines written after half a second, want 10", got)
	}
	if !strings.Contains(out[5], `msg="15 log lines suppressed"`) || !strings.Contains(out[5], "suppressed=15") {
		t.Fatalf("line after the burst = %q, want the suppressed count", out[5])
	}
	h.Close()
	if last := lines(buf); !strings.Contains(last[len(last)-1], "suppressed=15") {
		t.Fatalf("Close wrote %q, want the 15 lines suppressed at the end", last[len(last)-1])
	}
	// Derived loggers share the budget.
	clock.Advance(time.Second)
	before := strings.Count(buf.String(), "msg=")
	for i := range 40 {
		logger.With("i", i).WithGroup("g").Info("derived")
	}
	if got := strings.Count(buf.String(), "msg=") - before; got != 5 {
		t.Fatalf("derived loggers wrote %d lines, want the shared 5", got)
	}
}

func TestTruncatesMessageAndAttributes(t *testing.T) {
	logger, _, buf, _ := newTestLogger(Limits{MaxAttrBytes: 16})
	long := strings.Repeat("x", 1000)
	logger.With("with", long).Info(long, "s", long, slog.Group("g", "s", long), "n", 12345)
	line := buf.String()
	if strings.Contains(line, strings.Repeat("x", 17)) {
		t.Fatalf("an untruncated string: %q", line)
	}
	if got := strings.Count(line, Ellipsis); got != 4 {
		t.Fatalf("%d truncations, want 4: %q", got, line)
	}
	if !strings.Contains(line, "n=12345") {
		t.Fatalf("a number was changed: %q", line)
	}
}

func TestFileCap(t *testing.T) {
	logger, _, buf, _ := newTestLogger(Limits{MaxBytes: 1000, Written: 500})
	for i := range 100 {
		logger.Info("event", "i", i)
	}
	out := lines(buf)
	if last := out[len(out)-1]; !strings.Contains(last, "the log reached its limit") {
		t.Fatalf("last line %q does not say the log is full", last)
	}
	if got := strings.Count(buf.String(), "the log reached its limit"); got != 1 {
		t.Fatalf("the limit line was written %d times", got)
	}
	if n := 500 + buf.Len(); n > 1000+200 {
		t.Fatalf("the file would hold %d bytes, want at most the cap and one line", n)
	}
}

// Loggers derived from one Handler may log from many goroutines at once
// (run with -race); together they keep to the one budget.
func TestConcurrentLoggers(t *testing.T) {
	var out lockedBuffer
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := New(&out, Limits{Burst: 100, now: clock.Now}, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			logger := slog.New(h).With("goroutine", g)
			for range 100 {
				logger.Info("event")
			}
		})
	}
	wg.Wait()
	if got := strings.Count(out.String(), "msg=event"); got != 100 {
		t.Fatalf("%d lines written, want the burst of 100", got)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
