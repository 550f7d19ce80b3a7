package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// A link cut in the middle of a share (issue 15, must-show 3): `gander
// share` and `gander join`, relay only through a faultProxy, share a
// command that prints a numbered line every 20 ms and echoes what the
// guest types; the path is taken away for 5 s while the guest types. The
// guest's stream must then hold every numbered line from its first on,
// once each and in order, and what was typed during the cut once; typing
// after the cut must work. Both sides are gander, so Dilation reconnects
// and the tty-share websocket over it never notices.

// ptyProcess is a program on a terminal of the test's own (a PTY the
// test holds the master of), so that a test can type into it and read
// its output byte for byte, with when each byte came.
type ptyProcess struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	ptmx *os.File
	done chan struct{} // closed when the reader has ended (the program and its children are gone)

	mu      sync.Mutex
	out     bytes.Buffer
	changed chan struct{} // closed (and replaced) at every read
	last    time.Time     // when the last bytes came
	reads   []ptyRead     // when each read's bytes came, in order
}

// ptyRead is one read of the terminal's output: the output's length
// after it, and when it came.
type ptyRead struct {
	end int
	at  time.Time
}

// startPTY starts name with args on a new cols×rows terminal, in its own
// session (so stop also ends what it started); env is added to the
// test's. Cleanup stops it.
func startPTY(t testing.TB, cols, rows int, env []string, name string, args ...string) *ptyProcess {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = scratch
	cmd.Env = append(append(os.Environ(), "TERM=xterm-256color", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		t.Fatalf("starting %s on a terminal: %v", name, err)
	}
	p := &ptyProcess{t: t, name: filepath.Base(name), cmd: cmd, ptmx: ptmx, done: make(chan struct{}), changed: make(chan struct{})}
	go p.read()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			out := p.text()
			t.Logf("%s %q, its terminal's last 3000 bytes:\n%q", p.name, args, out[max(0, len(out)-3000):])
		}
	})
	return p
}

func (p *ptyProcess) read() {
	defer close(p.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := p.ptmx.Read(buf)
		if n > 0 {
			now := time.Now()
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.last = now
			p.reads = append(p.reads, ptyRead{p.out.Len(), now})
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		if err != nil { // EIO once every holder of the terminal has gone
			return
		}
	}
}

// openTerminal is a terminal for an in-process program: the test holds
// the master (a ptyProcess without a process), the program the tty it
// returns. Cleanup closes both.
func openTerminal(t testing.TB, cols, rows int) (*ptyProcess, *os.File) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err == nil {
		err = pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	}
	if err != nil {
		t.Fatalf("opening a terminal: %v", err)
	}
	p := &ptyProcess{t: t, name: "in-process terminal", ptmx: ptmx, done: make(chan struct{}), changed: make(chan struct{})}
	go p.read()
	t.Cleanup(func() {
		tty.Close()
		p.ptmx.Close()
		<-p.done
	})
	return p, tty
}

// stop hangs the program up (SIGHUP to its session, as a closed terminal
// does), then kills it if it is still there after stopGracePeriod.
func (p *ptyProcess) stop() {
	pid := p.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGHUP)
	exited := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(stopGracePeriod):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	// The session's other processes may hold the terminal a moment longer.
	select {
	case <-p.done:
	case <-time.After(stopGracePeriod):
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	p.ptmx.Close()
	<-p.done
}

// exited says whether the program (and whatever else held its
// terminal) has gone.
func (p *ptyProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// text is everything the program has written so far.
func (p *ptyProcess) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// size is how many bytes it has written so far.
func (p *ptyProcess) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Len()
}

// since is what came after the first from bytes, and when the last of it came.
func (p *ptyProcess) since(from int) ([]byte, time.Time, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.out.Bytes()
	return b[min(from, len(b)):], p.last, p.changed
}

// arrival is when the byte at offset came (zero if it has not yet).
func (p *ptyProcess) arrival(offset int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, _ := slices.BinarySearchFunc(p.reads, offset, func(r ptyRead, offset int) int {
		if r.end <= offset {
			return -1
		}
		return 1
	})
	if i == len(p.reads) {
		return time.Time{}
	}
	return p.reads[i].at
}

// write types s.
func (p *ptyProcess) write(s string) {
	p.t.Helper()
	if _, err := p.ptmx.WriteString(s); err != nil {
		p.t.Fatalf("typing into %s: %v", p.name, err)
	}
}

// ansiSequence matches the escape sequences a program draws with.
var ansiSequence = regexp.MustCompile(`\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHM])`)

// waitFor waits until re matches the output (escape sequences taken
// out) and returns the submatches; it fails the test at the timeout or
// if the program ends first.
func (p *ptyProcess) waitFor(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b, _, changed := p.since(0)
		if m := re.FindStringSubmatch(ansiSequence.ReplaceAllString(string(b), "")); m != nil {
			return m
		}
		select {
		case <-changed:
		case <-p.done:
			if m := re.FindStringSubmatch(ansiSequence.ReplaceAllString(p.text(), "")); m != nil {
				return m
			}
			p.t.Fatalf("%s ended without printing %s", p.name, re)
		case <-deadline.C:
			p.t.Fatalf("%s did not print %s within %v", p.name, re, timeout)
		}
	}
}

// tickerCommand is the shared command of the cut: a numbered line every
// 20 ms, in the background, and cat echoing each line the guest types
// (the terminal's own echo off, so that nothing else interleaves with
// the numbered lines, each of which is one write).
const tickerCommand = `stty -echo; (i=0; while :; do i=$((i+1)); printf 'tick %06d\n' $i; sleep 0.02; done) & exec cat`

var tickLine = regexp.MustCompile(`tick (\d{6})\r\n`)

// ticks are the numbers of the numbered lines in out, in order.
func ticks(out string) []int {
	var ns []int
	for _, m := range tickLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		ns = append(ns, n)
	}
	return ns
}

// contiguous says what is wrong with ns, if it is not first, first+1, …
func contiguous(ns []int) error {
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			kind := "lost"
			if ns[i] <= ns[i-1] {
				kind = "duplicated or out of order"
			}
			return fmt.Errorf("numbered lines %s: %d is followed by %d (of %d lines from %d)", kind, ns[i-1], ns[i], len(ns), ns[0])
		}
	}
	return nil
}

// waitTicks waits until the guest's stream has numbered lines up to at
// least n.
func waitTicks(t *testing.T, p *ptyProcess, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b, _, changed := p.since(0)
		if ns := ticks(string(b)); len(ns) > 0 && ns[len(ns)-1] >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			ns := ticks(p.text())
			t.Fatalf("the guest's numbered lines did not reach %d within %v (%d lines, last %v)", n, timeout, len(ns), ns[max(0, len(ns)-1):])
		}
	}
}

func TestShareOutage(t *testing.T) {
	const (
		cols, rows = 100, 30
		cutFor     = 5 * time.Second
	)
	mailbox := startMailbox(t)
	relay := startRelay(t)
	proxy := startProxy(t, relay.Addr)
	logs := t.TempDir()
	common := []string{"--mailbox", mailbox.URL, "--relay", "tcp:" + proxy.Addr, "--no-direct"}
	host := startPTY(t, cols, rows, nil, ganderBin(t),
		append([]string{"share", "--log", filepath.Join(logs, "host.log"), "--command", tickerCommand}, common...)...)
	code := host.waitFor(ganderShareCode, 30*time.Second)[1]
	// The guest's window is the host's size: a smaller one would be told
	// to grow rather than shown the output.
	guest := startPTY(t, cols, rows, nil, ganderBin(t),
		append([]string{"join", "--log", filepath.Join(logs, "guest.log")}, append(common, code)...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host log:\n%s\nguest log:\n%s", tail(filepath.Join(logs, "host.log"), 40), tail(filepath.Join(logs, "guest.log"), 40))
		}
	})
	guest.waitFor(regexp.MustCompile(`gander: joined`), 60*time.Second)
	waitFor := func(p *ptyProcess, what string) {
		t.Helper()
		p.waitFor(regexp.MustCompile(regexp.QuoteMeta(what)+`\r\n`), 20*time.Second)
	}
	guest.write("typed before the cut\r")
	waitFor(guest, "typed before the cut")
	if live := proxy.Live(); live < 2 {
		t.Fatalf("the proxy forwards %d connections; the relay path (both sides') should be through it", live)
	}
	// A second of numbered lines before the cut.
	waitTicks(t, guest, 1, 20*time.Second)
	first := ticks(guest.text())[0]
	waitTicks(t, guest, first+50, 20*time.Second)
	accepted := proxy.Accepted()

	// The path goes; a second into the cut the guest types.
	typed := make(chan struct{})
	timer := time.AfterFunc(time.Second, func() {
		defer close(typed)
		guest.ptmx.WriteString("typed during the cut\r")
	})
	defer timer.Stop()
	cutAt := ticks(host.text())
	back := proxy.Outage(t, cutFor)
	<-typed
	hostAtReturn := ticks(host.text())
	t.Logf("cut for %v at the host's line %d; the path was back at its line %d", cutFor, cutAt[len(cutAt)-1], hostAtReturn[len(hostAtReturn)-1])

	// After the cut: what was typed during it, the lines printed during
	// it, and typing again.
	waitFor(guest, "typed during the cut")
	waitTicks(t, guest, hostAtReturn[len(hostAtReturn)-1], 30*time.Second)
	t.Logf("the guest had the host's line at the path's return %v after it", time.Since(back).Round(time.Millisecond))
	waitTicks(t, guest, hostAtReturn[len(hostAtReturn)-1]+25, 30*time.Second)
	guest.write("typed after the cut\r")
	waitFor(guest, "typed after the cut")
	if proxy.Accepted() <= accepted {
		t.Fatalf("no new relay connection through the proxy after the cut (accepted %d before, %d after)", accepted, proxy.Accepted())
	}

	// The guest leaves; its stream is complete.
	guest.write("\x1d")
	guest.waitFor(regexp.MustCompile(`gander: detached`), 10*time.Second)
	out := guest.text()
	ns := ticks(out)
	if err := contiguous(ns); err != nil {
		t.Fatal(err)
	}
	for _, typed := range []string{"typed before the cut", "typed during the cut", "typed after the cut"} {
		if n := strings.Count(out, typed+"\r\n"); n != 1 {
			t.Errorf("the guest's stream shows %q %d times, want once", typed, n)
		}
	}
	t.Logf("the guest's stream: numbered lines %d to %d, none lost or duplicated, across a %v cut", ns[0], ns[len(ns)-1], cutFor)
	// The host's terminal printed the same lines.
	if err := contiguous(ticks(host.text())); err != nil {
		t.Fatalf("the host's own terminal: %v", err)
	}
	select {
	case <-guest.done:
	case <-time.After(10 * time.Second):
		t.Fatal("gander join did not exit after detaching")
	}
}
