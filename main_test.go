package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gander-pair/gander/internal/logcap"
	"github.com/gander-pair/gander/session"
)

// recordingWriter remembers each Write it is given.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(bytes.Clone(p)))
	return len(p), nil
}

func (r *recordingWriter) taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestBatchedWriterJoinsLinesWithinTheDelay(t *testing.T) {
	w := &recordingWriter{}
	b := newBatchedWriter(w, 50*time.Millisecond)
	b.Write([]byte("one\n"))
	b.Write([]byte("two\n"))
	if got := w.taken(); len(got) != 0 {
		t.Fatalf("written at once: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(w.taken()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := w.taken(); len(got) != 1 || got[0] != "one\ntwo\n" {
		t.Fatalf("writes = %q, want the two lines in one", got)
	}
	b.Write([]byte("three\n"))
	b.Flush()
	if got := w.taken(); len(got) != 2 || got[1] != "three\n" {
		t.Fatalf("after Flush, writes = %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1000": 1000, "10G": 10 << 30, "10GiB": 10 << 30, "500m": 500 << 20, "2 KB": 2 << 10, "1T": 1 << 40, "7B": 7,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "G", "1.5G", "10X", "9999999999T", "1GG"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, syscall.ENOSPC }

// Output that cannot be written (a full disk) is reported once, so that
// main ends the session, and nothing more is buffered.
func TestBatchedWriterReportsTheFirstWriteError(t *testing.T) {
	b := newBatchedWriter(failingWriter{}, time.Hour)
	failed := make(chan error, 2)
	b.failed = func(err error) { failed <- err }
	b.Write([]byte("one\n"))
	if err := b.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush = %v, want ENOSPC", err)
	}
	if _, err := b.Write([]byte("two\n")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write after the failure = %v, want ENOSPC", err)
	}
	b.Flush()
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("failed(%v)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("failed was not called")
	}
	select {
	case err := <-failed:
		t.Errorf("failed called twice (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	if len(b.buf) != 0 {
		t.Errorf("%d bytes still buffered", len(b.buf))
	}
}

// readLog returns the lines of the log file at path.
func readLog(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// Whatever length a peer gives a side, phase, name or error, a log line
// holds at most logcap.MaxAttrBytes of each.
func TestLogTruncatesEveryString(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gander.log")
	logger, closeLog, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 10000) // two bytes a rune: a cut must not split one
	logger.With("side", long).WithGroup("g").Debug(long,
		"phase", long,
		"err", errors.New(long),
		"bytes", []byte(long),
		slog.Group("inner", "name", long),
		"value", slog.AnyValue(struct{ S string }{long}))
	closeLog()
	lines := readLog(t, path)
	if len(lines) != 1 {
		t.Fatalf("log has %d lines, want 1", len(lines))
	}
	line := lines[0]
	if !utf8.ValidString(line) {
		t.Errorf("a truncation split a UTF-8 sequence")
	}
	if n := strings.Count(line, "…"); n != 7 {
		t.Errorf("%d strings truncated, want 7 (message and six attributes): %.300q", n, line)
	}
	if max := 7*256 + 200; len(line) > max {
		t.Errorf("log line is %d bytes, want at most %d", len(line), max)
	}
}

// A flood of events logs a burst, then a trickle, then one line that
// counts what was left out.
func TestLogIsRateLimited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gander.log")
	logger, closeLog, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	const flood = 5000
	start := time.Now()
	for i := range flood {
		logger.Debug("peer event", "i", i)
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // tokens for a few more lines
	logger.Info("after the flood")
	closeLog()
	lines := readLog(t, path)
	written := 0
	suppressed := 0
	for _, line := range lines {
		if strings.Contains(line, `msg="peer event"`) {
			written++
		}
		if _, after, ok := strings.Cut(line, " suppressed="); ok {
			n, _ := strconv.Atoi(strings.Fields(after)[0])
			suppressed += n
		}
	}
	if max := logcap.Burst + int((elapsed.Seconds()+1)*logcap.LinesPerSecond); written > max {
		t.Errorf("%d of %d flood lines written in %v, want at most %d", written, flood, elapsed, max)
	}
	if written+suppressed != flood {
		t.Errorf("%d lines written and %d reported suppressed, want %d in all", written, suppressed, flood)
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "after the flood") {
		t.Errorf("the line after the flood is missing; last line: %q", last)
	}
}

// The log file stops at logcap.MaxFileBytes with one line that says so;
// a file left full by an earlier session is moved aside to gander.log.1.
func TestLogFileIsCapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gander.log")
	// Sparse files: a near-full log costs no disk.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, logcap.MaxFileBytes-1000); err != nil {
		t.Fatal(err)
	}
	logger, closeLog, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		logger.Debug("peer event", "i", i)
	}
	closeLog()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(logcap.MaxFileBytes + 200); info.Size() > max {
		t.Errorf("log is %d bytes, want at most %d", info.Size(), max)
	}
	if last := readLogTail(t, path); !strings.Contains(last, "the log reached its limit") {
		t.Errorf("last line %q does not say the log is full", last)
	}

	// The next session starts a fresh file and keeps the full one as .1.
	logger, closeLog, err = openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("next session")
	closeLog()
	if info, err := os.Stat(path); err != nil || info.Size() > 4096 {
		t.Fatalf("the next session appends to the full log (%v)", err)
	}
	if lines := readLog(t, path); len(lines) != 1 || !strings.Contains(lines[0], "next session") {
		t.Errorf("new log = %q, want the one line of the next session", lines)
	}
	if info, err := os.Stat(path + ".1"); err != nil || info.Size() < logcap.MaxFileBytes {
		t.Errorf("the full log was not kept as gander.log.1: %v", err)
	}
}

// readLogTail returns the last line of the (possibly large, sparse) log.
func readLogTail(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	info, _ := f.Stat()
	n, _ := f.ReadAt(buf, max(0, info.Size()-int64(len(buf))))
	lines := strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n")
	return lines[len(lines)-1]
}

// The connection's story in plain lines: the first connection as before,
// an outage once however many statuses it brings, then how it ended.
func TestPrintEventLinkStatus(t *testing.T) {
	lost := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	first := session.LinkStatus{State: session.LinkConnected, Generation: 1, Via: "relay 10.0.0.1:4001", Relayed: true}
	reconnecting := func(gen, attempts int) session.LinkStatus {
		return session.LinkStatus{State: session.LinkReconnecting, Generation: gen, Since: lost, Attempts: attempts,
			LastFailure: syscall.ECONNREFUSED}
	}
	back := func(gen int, outage time.Duration, via string) session.LinkStatus {
		return session.LinkStatus{State: session.LinkConnected, Generation: gen, Via: via, Outage: outage}
	}
	for _, tc := range []struct {
		name     string
		statuses []session.LinkStatus
		want     string
	}{
		{"first connection", []session.LinkStatus{{State: session.LinkWaiting}, {State: session.LinkConnecting, Generation: 1}, first},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n"},
		{"the same connection reported again", []session.LinkStatus{first, first}, "Connected via relay 10.0.0.1:4001 (generation 1)\n"},
		{"an outage and its end", []session.LinkStatus{first, reconnecting(1, 0), reconnecting(1, 1), reconnecting(2, 3), reconnecting(3, 7),
			back(4, 3240*time.Millisecond, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001 after 3.2s (7 attempts)\n"},
		{"two outages", []session.LinkStatus{first, reconnecting(1, 1), back(2, 40*time.Millisecond, "direct 10.0.0.2:4444"),
			reconnecting(2, 0), reconnecting(3, 90), back(4, 95*time.Second+300*time.Millisecond, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via direct 10.0.0.2:4444 after 40ms (1 attempt)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001 after 1m35s (90 attempts)\n"},
		// Status updates are coalesced: the Reconnecting ones may be missed.
		{"an outage seen only as it ended", []session.LinkStatus{first, back(2, 2*time.Second, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Reconnected via relay 10.0.0.1:4001 after 2s\n"},
		{"attempts reported with Connected", []session.LinkStatus{first, reconnecting(1, 2), {State: session.LinkConnected, Generation: 2,
			Via: "relay 10.0.0.1:4001", Outage: time.Second, Attempts: 5}},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001 after 1s (5 attempts)\n"},
		{"no outage length from dilation", []session.LinkStatus{first, reconnecting(1, 0), back(2, 0, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001\n"},
		{"stopped with a reason", []session.LinkStatus{first, reconnecting(1, 4),
			{State: session.LinkStopped, Err: &session.ProtocolError{Layer: "L1", Reason: "bad \x1b[2Jthing"}}},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Connection stopped: dilation L1: bad \uFFFD[2Jthing\n"},
		{"stopped by gander itself", []session.LinkStatus{first, {State: session.LinkStopped, Err: session.ErrLinkClosed}},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n"},
		{"a hostile path", []session.LinkStatus{{State: session.LinkConnected, Generation: 1, Via: "direct \x1b]0;pwned\x07:1"}},
			"Connected via direct \uFFFD]0;pwned\uFFFD:1 (generation 1)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			var link linkLines
			for _, st := range tc.statuses {
				printEvent(&out, &link, st)
			}
			if out.String() != tc.want {
				t.Errorf("printed:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}
