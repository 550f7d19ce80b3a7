package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gander-pair/gander/internal/logcap"
)

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

// Bad usage is exit status 2 with one line that says what is wrong,
// before anything is dialled; --version and --help are 0.
func TestUsage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		stdin  string
		status int
		stderr string // a line stderr holds
		stdout string // a line stdout holds
	}{
		{[]string{"--version"}, "", 0, "", "gander " + version},
		{[]string{"--help"}, "", 0, "", "Usage:"},
		{[]string{"send"}, "", 2, "gander send: give a file or directory to send, or --text MESSAGE (- reads it from stdin)", ""},
		{[]string{"send", "--text", "hi", "extra"}, "", 2, "gander send: give either --text MESSAGE or a file or directory, not both", ""},
		{[]string{"send", file, file}, "", 2, "gander send: one file or directory per code (send a directory to send several)", ""},
		{[]string{"send", file, "--transit-helper", "relay.example:4001"}, "", 2, `gander send: --transit-helper: transit relay "relay.example:4001": want tcp:HOST:PORT`, ""},
		{[]string{"send", "--code-length", "0", file}, "", 2, "gander send: --code-length must be at least 1", ""},
		{[]string{"send", filepath.Join(file, "missing")}, "", 1, "gander send: cannot send: ", ""},
		{[]string{"send", "--text", "hi", "--code-length", "0"}, "", 2, "gander send: --code-length must be at least 1", ""},
		{[]string{"receive", "1-a-b", "2-c-d"}, "", 2, "gander receive: expected at most one code", ""},
		{[]string{"receive"}, "", 2, "gander receive: no code given", ""},
		{[]string{"receive", "--bogus"}, "", 2, "flag provided but not defined: -bogus", ""},
		{[]string{"1-a-b", "extra"}, "", 2, `gander: unknown command "1-a-b"`, ""},
		{[]string{"--no-tui"}, "", 2, "gander: nothing to do: give --local, --remote, --allow-listen, --send or --accept-files (see gander --help)", ""},
		{[]string{"--json", "--send", file}, "", 2, `gander: --send is for --no-tui; with --json, use {"kind": "send-file", ...}`, ""},
		{[]string{"--no-tui", "--accept-files", "--code-length", "0"}, "", 2, "gander: --code-length must be at least 1", ""},
		{[]string{"--no-tui", "--accept-files", "--max-file-size", "10X"}, "", 2, `gander: --max-file-size: "10X" is not a size (bytes, or a number with K, M, G or T)`, ""},
		{[]string{"--no-tui", "--allow-listen", "["}, "", 2, `gander: bad --allow-listen pattern "["`, ""},
		{[]string{"--no-tui", "--local", ""}, "", 2, "gander: ", ""},
		{[]string{"--no-tui", "--accept-files", "guitarist-revenge"}, "", 2, "gander: ", ""},
	} {
		var stdout, stderr strings.Builder
		status := run(t.Context(), tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
		if status != tc.status {
			t.Errorf("gander %q: status %d, want %d\n%s", tc.args, status, tc.status, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("gander %q: stderr %q, want %q in it", tc.args, stderr.String(), tc.stderr)
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("gander %q: stdout %q, want %q in it", tc.args, stdout.String(), tc.stdout)
		}
	}
}
