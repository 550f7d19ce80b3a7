package e2e

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkShare measures what a guest feels typing into a shared
// terminal (issue 15, must-show 4): keystroke-to-echo latency, from one
// byte written to the guest's terminal (a PTY this benchmark holds) to
// that byte back in the guest's output, through the guest program, the
// wormhole link and the host's PTY, where a raw echo (cat on a terminal
// in raw mode, no echo) sends it back. 200 samples, one every 20 ms, per
// route and load, p50 and p99; idle and under load, in one run:
//
//	./e2e/test.sh -run '^$' -bench Share -benchtime 1x
//
// Routes: gander share ↔ gander join, and shwim ↔ shwim (26.8, running
// Debian's tty-share), both over the direct loopback path (shwim cannot
// be told a transit relay). Loads: see shareLoads.
func BenchmarkShare(b *testing.B) {
	mailbox := startMailbox(b) // skips outside ./e2e/test.sh
	relay := startRelay(b)
	file := sparseFile(b, shareLoadSize)

	routes := []shareRoute{
		{"gander share ↔ gander join", func(b *testing.B) *ptyProcess { return ganderSharePair(b, mailbox.URL) }},
		{"shwim ↔ shwim", func(b *testing.B) *ptyProcess { return shwimSharePair(b, mailbox.URL) }},
	}
	loads := []shareLoad{
		{"idle", "", nil},
		{"wormhole send", "a concurrent 1 GiB `wormhole send` (magic-wormhole 0.24, py→py, another session, through the same relay)",
			func(b *testing.B) *process { return pyTransfer(b, mailbox.URL, relay.Hint, file) }},
	}
	results := map[string]map[string]echoRun{}
	for _, route := range routes {
		results[route.name] = map[string]echoRun{}
		b.Run(route.name, func(b *testing.B) {
			guest := route.setup(b)
			warmUp(b, guest)
			for _, load := range loads {
				results[route.name][load.name] = measureShareEcho(b, guest, load)
			}
		})
	}
	printShare(routes, loads, results)
}

const (
	shareEchoSamples  = 200
	shareEchoInterval = 20 * time.Millisecond
	shareEchoTimeout  = 5 * time.Second // an echo later than this is a stall
	shareLoadSize     = 1 << 30
	// shareLoadHeadStart: the load runs this long before the samples,
	// for it to be flowing at full speed.
	shareLoadHeadStart = 2 * time.Second
	shareCols          = 100
	shareRows          = 30
)

// rawEchoCommand is the host's shared program: every byte typed comes
// straight back, nothing else is printed.
const rawEchoCommand = "stty raw -echo; exec cat"

type shareRoute struct {
	name string
	// setup starts a host and a guest; it returns the guest, on a
	// terminal of the benchmark's, joined (raw mode) and ready.
	setup func(b *testing.B) *ptyProcess
}

// shareLoad is what runs beside the samples.
type shareLoad struct {
	name, describe string
	// start starts it and returns the process whose end is the load's
	// end (nil: idle).
	start func(b *testing.B) *process
}

// echoRun is one route under one load.
type echoRun struct {
	p50, p99, max time.Duration
	n             int
	stall         error
	loadEnded     bool // the load was over before the last sample
}

func (r echoRun) String() string {
	if r.stall != nil {
		return fmt.Sprintf("stalled after %d: %v", r.n, r.stall)
	}
	s := fmt.Sprintf("%s / %s ms", ms(r.p50), ms(r.p99))
	if r.loadEnded {
		s += " (load ended early)"
	}
	return s
}

func ganderSharePair(b *testing.B, mailboxURL string) *ptyProcess {
	common := []string{"--mailbox", mailboxURL, "--relay", "tcp:127.0.0.1:1"}
	host := startPTY(b, shareCols, shareRows, nil, ganderBin(b), append([]string{"share", "--command", rawEchoCommand}, common...)...)
	code := host.waitFor(ganderShareCode, 30*time.Second)[1]
	go discardOutput(host)
	guest := startPTY(b, shareCols, shareRows, nil, ganderBin(b), append([]string{"join"}, append(common, code)...)...)
	guest.waitFor(regexp.MustCompile(`gander: joined`), 60*time.Second)
	return guest
}

func shwimSharePair(b *testing.B, mailboxURL string) *ptyProcess {
	shwim := venvBin(b, "shwim")
	if _, err := exec.LookPath("tty-share"); err != nil {
		b.Skip("tty-share is not installed (e2e/test.sh installs it)")
	}
	// tty-share runs $SHELL: here, the raw echo.
	shell := filepath.Join(b.TempDir(), "echo-shell")
	if err := os.WriteFile(shell, []byte("#!/bin/sh\n"+rawEchoCommand+"\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	host := startPTY(b, shareCols, shareRows, []string{"SHELL=" + shell}, shwim, "--mailbox", mailboxURL)
	code := host.waitFor(shwimHostCode, 30*time.Second)[1]
	guest := startPTY(b, shareCols, shareRows, nil, shwim, "--mailbox", mailboxURL, code)
	// tty-share's host starts the shell once Enter is pressed.
	host.waitFor(regexp.MustCompile(`Press Enter to continue`), 60*time.Second)
	host.write("\r")
	go discardOutput(host)
	return guest
}

// discardOutput keeps nothing of a host's output, which its reader
// would otherwise keep (the host's terminal must be read, or the host
// stops); it ends with the host.
func discardOutput(p *ptyProcess) {
	for {
		p.mu.Lock()
		p.out.Reset()
		p.reads = p.reads[:0]
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.done:
			return
		}
	}
}

// warmUp waits until the guest's terminal is in raw mode (its program
// reads keys one by one, and nothing echoes locally), then types until a
// key comes back from the host, then lets whatever was still under way
// arrive.
func warmUp(b *testing.B, guest *ptyProcess) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !rawMode(guest) {
		if time.Now().After(deadline) {
			b.Fatal("the guest's terminal is not in raw mode after 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		from := guest.size()
		guest.write("w")
		if _, err := waitEcho(guest, from, 'w', 500*time.Millisecond); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no key came back from the host within 60 s")
		}
	}
	time.Sleep(time.Second)
}

// rawMode says whether the guest's terminal has echo and line editing
// off (the master of a PTY reads the terminal's modes).
func rawMode(p *ptyProcess) bool {
	tio, err := unix.IoctlGetTermios(int(p.ptmx.Fd()), unix.TCGETS)
	return err == nil && tio.Lflag&(unix.ECHO|unix.ICANON) == 0
}

// waitEcho waits for c in the output after from and returns when it came.
func waitEcho(p *ptyProcess, from int, c byte, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		out, _, changed := p.since(from)
		if i := bytes.IndexByte(out, c); i >= 0 {
			return p.arrival(from + i), nil
		}
		select {
		case <-changed:
		case <-p.done:
			return time.Time{}, fmt.Errorf("%s ended", p.name)
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("no echo of %q within %v", c, timeout)
		}
	}
}

// measureShareEcho takes the samples with load running.
func measureShareEcho(b *testing.B, guest *ptyProcess, load shareLoad) echoRun {
	b.Helper()
	var loadProc *process
	if load.start != nil {
		loadProc = load.start(b)
		time.Sleep(shareLoadHeadStart)
		if loadProc.exited() {
			b.Fatalf("the load (%s) ended before the samples began: %v\n%s", load.name, loadProc.err, loadProc.output())
		}
	}
	var r echoRun
	var samples []time.Duration
	next := time.Now()
	for i := 0; i < shareEchoSamples; i++ {
		time.Sleep(time.Until(next))
		next = next.Add(shareEchoInterval)
		c := byte('a' + i%26)
		from := guest.size()
		sent := time.Now()
		guest.write(string(c))
		at, err := waitEcho(guest, from, c, shareEchoTimeout)
		if err != nil {
			r.stall = err
			break
		}
		samples = append(samples, at.Sub(sent))
		if now := time.Now(); next.Before(now) {
			next = now
		}
	}
	if loadProc != nil {
		r.loadEnded = loadProc.exited()
		loadProc.stop()
	}
	r.n = len(samples)
	if len(samples) > 0 {
		slices.Sort(samples)
		r.p50, r.p99, r.max = nearestRank(samples, 0.5), nearestRank(samples, 0.99), samples[len(samples)-1]
	}
	time.Sleep(time.Second) // the queues drain before the next run
	return r
}

// nearestRank is the nearest-rank percentile of sorted samples, to the
// microsecond (percentile rounds to milliseconds).
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))].Round(time.Microsecond)
}

// sparseFile is a file of size bytes (zeros, no disk used).
func sparseFile(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "load.bin")
	f, err := os.Create(path)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	return path
}

// pyTransfer runs `wormhole send` of file to `wormhole receive`
// (magic-wormhole 0.24) and returns the receiver.
func pyTransfer(b *testing.B, mailboxURL, relayHint, file string) *process {
	b.Helper()
	wormhole := venvBin(b, "wormhole")
	send := startProcess(b, filepath.Dir(file), wormhole, "--relay-url", mailboxURL, "--transit-helper", relayHint,
		"send", "--hide-progress", file)
	code := send.waitFor(b, codeLine, 30*time.Second)[1]
	return startProcess(b, b.TempDir(), wormhole, "--relay-url", mailboxURL, "--transit-helper", relayHint,
		"receive", "--hide-progress", "--accept-file", code)
}

// printShare prints the table: per route, idle and each load, and the
// goal (under load ≤ 1.5 × idle + 5 ms, p50 and p99 each).
func printShare(routes []shareRoute, loads []shareLoad, results map[string]map[string]echoRun) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nkeystroke → echo through a shared terminal: %d samples every %v, p50 / p99\n", shareEchoSamples, shareEchoInterval)
	fmt.Fprintf(&sb, "%-30s", "route")
	for _, l := range loads {
		fmt.Fprintf(&sb, " %-24s", l.name)
	}
	sb.WriteString(" goal: load ≤ 1.5×idle + 5 ms\n")
	for _, r := range routes {
		res, ok := results[r.name]
		if !ok {
			continue
		}
		fmt.Fprintf(&sb, "%-30s", r.name)
		for _, l := range loads {
			if run, ok := res[l.name]; ok {
				fmt.Fprintf(&sb, " %-24s", run)
			} else {
				fmt.Fprintf(&sb, " %-24s", "-")
			}
		}
		idle := res["idle"]
		var verdicts []string
		for _, l := range loads[1:] {
			run, ok := res[l.name]
			if !ok || run.stall != nil || idle.stall != nil {
				continue
			}
			met := func(load, idle time.Duration) bool { return load <= idle*3/2+5*time.Millisecond }
			verdict := "met"
			if !met(run.p50, idle.p50) || !met(run.p99, idle.p99) {
				verdict = "missed"
			}
			verdicts = append(verdicts, fmt.Sprintf("%s: %s (p99 %.2f× idle)", l.name, verdict, float64(run.p99)/float64(idle.p99)))
		}
		sb.WriteString(" " + strings.Join(verdicts, "; ") + "\n")
	}
	if len(routes) >= 2 {
		g, s := results[routes[0].name], results[routes[1].name]
		for _, l := range loads {
			if gr, sr := g[l.name], s[l.name]; gr.n > 0 && sr.n > 0 && gr.stall == nil && sr.stall == nil {
				fmt.Fprintf(&sb, "%s / %s, %s: p50 %.2f×, p99 %.2f×\n", routes[0].name, routes[1].name, l.name,
					float64(gr.p50)/float64(sr.p50), float64(gr.p99)/float64(sr.p99))
			}
		}
	}
	sb.WriteString("loads:\n")
	for _, l := range loads[1:] {
		fmt.Fprintf(&sb, "  %s: %s\n", l.name, l.describe)
	}
	fmt.Print(sb.String())
}
