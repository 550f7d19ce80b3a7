// Package logcap bounds what a log can cost when outside input decides how
// often and with what text gander logs: a peer, a stranger who claimed the
// nameplate or the mailbox server can each cause a log line per message.
// Handler wraps a slog.Handler and, for every logger derived from it,
// rate-limits the records, truncates every string it is given and stops
// writing once the file has reached its size cap.
package logcap

import (
	"context"
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// The default bounds (see Limits).
const (
	// MaxAttrBytes caps the message and every string attribute of a
	// record (an error's text, a Stringer's, anything formatted): a peer
	// chooses the length of the sides, phases and names gander logs.
	MaxAttrBytes = 256
	// LinesPerSecond and Burst are the token bucket for records: a burst
	// of 500 lines passes, then 50 a second; the rest are counted and
	// reported in one "log lines suppressed" line once lines pass again.
	LinesPerSecond = 50
	Burst          = 500
	// MaxFileBytes caps the log file, what earlier sessions appended
	// included: at 50 lines a second of at most a few KiB each a flood
	// takes hours to reach it. Beyond it one last line says so and
	// nothing more is written; the next gander moves the full file to
	// gander.log.1 (main's openLog), so the disk holds at most twice this.
	MaxFileBytes = 100 << 20
)

// Ellipsis marks a truncated string.
const Ellipsis = "…"

// Limits are the bounds a Handler enforces; zero fields take the defaults.
type Limits struct {
	MaxAttrBytes   int
	LinesPerSecond float64
	Burst          int
	// MaxBytes caps the bytes written through the Writer, counting from
	// Written (what the file already held).
	MaxBytes int64
	Written  int64
	// now is the clock (tests replace it).
	now func() time.Time
}

func (l Limits) withDefaults() Limits {
	if l.MaxAttrBytes <= 0 {
		l.MaxAttrBytes = MaxAttrBytes
	}
	if l.LinesPerSecond <= 0 {
		l.LinesPerSecond = LinesPerSecond
	}
	if l.Burst <= 0 {
		l.Burst = Burst
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = MaxFileBytes
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Handler is a slog.Handler that writes text records to a file within
// Limits. Loggers derived with With or WithGroup share its budget.
type Handler struct {
	inner slog.Handler
	state *state
}

// state is what every Handler derived from one New shares.
type state struct {
	limits Limits
	out    *cappedWriter
	inner  slog.Handler // the root, for the suppressed-lines report

	mu         sync.Mutex
	tokens     float64
	refilled   time.Time
	suppressed int
}

// New returns a Handler writing slog's text format to w.
func New(w io.Writer, limits Limits, opts *slog.HandlerOptions) *Handler {
	limits = limits.withDefaults()
	out := &cappedWriter{w: w, written: limits.Written, max: limits.MaxBytes, now: limits.now}
	inner := slog.NewTextHandler(out, opts)
	return &Handler{inner: inner, state: &state{
		limits:   limits,
		out:      out,
		inner:    inner,
		tokens:   float64(limits.Burst),
		refilled: limits.now(),
	}}
}

func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	suppressed, ok := h.state.take()
	if !ok {
		return nil
	}
	if suppressed > 0 {
		h.state.reportSuppressed(ctx, suppressed)
	}
	max := h.state.limits.MaxAttrBytes
	capped := slog.NewRecord(r.Time, r.Level, Truncate(r.Message, max), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		capped.AddAttrs(capAttr(a, max))
		return true
	})
	return h.inner.Handle(ctx, capped)
}

func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	capped := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		capped[i] = capAttr(a, h.state.limits.MaxAttrBytes)
	}
	return &Handler{inner: h.inner.WithAttrs(capped), state: h.state}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), state: h.state}
}

// Close writes the count of lines suppressed since the last one that
// passed, if any: a flood at the end of a session is not left unsaid.
func (h *Handler) Close() {
	h.state.mu.Lock()
	n := h.state.suppressed
	h.state.suppressed = 0
	h.state.mu.Unlock()
	if n > 0 {
		h.state.reportSuppressed(context.Background(), n)
	}
}

// take spends a token for one record. It reports whether the record may
// be written and, if so, how many were suppressed before it.
func (s *state) take() (suppressed int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.limits.now()
	if elapsed := now.Sub(s.refilled); elapsed > 0 {
		s.tokens = min(float64(s.limits.Burst), s.tokens+elapsed.Seconds()*s.limits.LinesPerSecond)
		s.refilled = now
	}
	if s.tokens < 1 {
		s.suppressed++
		return 0, false
	}
	s.tokens--
	suppressed, s.suppressed = s.suppressed, 0
	return suppressed, true
}

func (s *state) reportSuppressed(ctx context.Context, n int) {
	r := slog.NewRecord(s.limits.now(), slog.LevelWarn, fmt.Sprintf("%d log lines suppressed", n), 0)
	r.AddAttrs(slog.Int("suppressed", n), slog.Float64("lines_per_second", s.limits.LinesPerSecond), slog.Int("burst", s.limits.Burst))
	s.inner.Handle(ctx, r)
}

// capAttr truncates a's string value, or the text it would be logged as,
// to max bytes, within groups too.
func capAttr(a slog.Attr, max int) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Truncate(v.String(), max))
	case slog.KindGroup:
		group := v.Group()
		capped := make([]any, len(group))
		for i, g := range group {
			capped[i] = capAttr(g, max)
		}
		return slog.Group(a.Key, capped...)
	case slog.KindAny:
		if s := textOf(v.Any()); len(s) > max {
			return slog.String(a.Key, Truncate(s, max))
		}
		return slog.Attr{Key: a.Key, Value: v}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}

// textOf is the text slog's text handler would write for v.
func textOf(v any) string {
	switch v := v.(type) {
	case error:
		return v.Error()
	case encoding.TextMarshaler:
		text, err := v.MarshalText()
		if err != nil {
			return err.Error()
		}
		return string(text)
	case []byte:
		return string(v)
	default:
		return fmt.Sprintf("%+v", v)
	}
}

// Truncate cuts s to at most max bytes, ending with Ellipsis if it was
// cut, without splitting a UTF-8 sequence.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(Ellipsis)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Ellipsis
}

// cappedWriter stops writing once max bytes are in the file, after one
// last line that says so.
type cappedWriter struct {
	mu      sync.Mutex
	w       io.Writer
	written int64
	max     int64
	full    bool
	now     func() time.Time
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return len(p), nil
	}
	if c.written+int64(len(p)) > c.max {
		c.full = true
		last := fmt.Sprintf("time=%s level=WARN msg=\"the log reached its limit: nothing more is logged in this session\" limit=%d\n",
			c.now().Format(time.RFC3339Nano), c.max)
		n, err := io.WriteString(c.w, last)
		c.written += int64(n)
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	n, err := c.w.Write(p)
	c.written += int64(n)
	return n, err
}
