package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	xterm "github.com/charmbracelet/x/term"
	"github.com/muesli/cancelreader"
	"golang.org/x/sys/unix"

	"github.com/gander-pair/gander/session"
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
// GANDER_SHARE_LOADS (e.g. "idle,same session") runs only some loads;
// GANDER_SHARE_GOMAXPROCS sets the gander app peers' GOMAXPROCS,
// GANDER_SHARE_HOST_INPROCESS=1 runs the app route's host in this
// process too (so that the Go scheduling and mutex figures printed
// cover it), and GANDER_SHARE_SS=1 prints the sockets (ss -tnio) now and
// then under load: the experiments behind the README's analysis.
//
// Routes: gander share ↔ gander join, and shwim ↔ shwim (26.8, running
// Debian's tty-share), both over the direct loopback path (shwim cannot
// be told a transit relay). Loads: see shareLoads.
func BenchmarkShare(b *testing.B) {
	mailbox := startMailbox(b) // skips outside ./e2e/test.sh
	relay := startRelay(b)
	file := sparseFile(b, shareLoadSize)

	routes := []shareRoute{
		{"gander app ↔ gander app", func(b *testing.B) shareGuest { return ganderAppPair(b, mailbox.URL, file) }},
		{"shwim ↔ shwim", ptyRoute(func(b *testing.B) *ptyProcess { return shwimSharePair(b, mailbox.URL) })},
		{"gander share ↔ gander join", ptyRoute(func(b *testing.B) *ptyProcess { return ganderSharePair(b, mailbox.URL) })},
		// What shwim's share costs without the wormhole.
		{"tty-share ↔ tty-share, no wormhole", ptyRoute(ttySharePair)},
	}
	loads := []shareLoad{
		{"idle", "", nil},
		{"same session", "the host sends the guest a 1 GiB file in the same session (gander's files-v1 beside terminal-v1); shwim and tty-share have no file transfer",
			func(b *testing.B, g shareGuest) runningLoad {
				if g.sameSession == nil {
					return nil
				}
				return g.sameSession(b)
			}},
		{"gander send", "a concurrent 1 GiB `gander send` → `gander receive` (another session: gander's own work, in other processes)",
			func(b *testing.B, _ shareGuest) runningLoad {
				return processLoad{ganderTransfer(b, mailbox.URL, relay.Hint, file)}
			}},
		{"wormhole send", "a concurrent 1 GiB `wormhole send` (magic-wormhole 0.24, py→py: another session on the same 2 cores)",
			func(b *testing.B, _ shareGuest) runningLoad {
				return processLoad{pyTransfer(b, mailbox.URL, relay.Hint, file)}
			}},
	}
	// GANDER_SHARE_LOADS=idle,same session runs only those loads
	// (-bench 'Share/ROUTE' picks routes).
	if only := os.Getenv("GANDER_SHARE_LOADS"); only != "" {
		loads = slices.DeleteFunc(loads, func(l shareLoad) bool { return !slices.Contains(strings.Split(only, ","), l.name) })
	}
	results := map[string]map[string]echoRun{}
	for _, route := range routes {
		results[route.name] = map[string]echoRun{}
		b.Run(route.name, func(b *testing.B) {
			guest := route.setup(b)
			warmUp(b, guest.term)
			for _, load := range loads {
				if run, ok := measureShareEcho(b, guest, load); ok {
					results[route.name][load.name] = run
				}
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
	// setup starts a host and a guest; it returns the guest's terminal
	// (the benchmark's), joined (raw mode) and ready.
	setup func(b *testing.B) shareGuest
}

// shareGuest is a route's guest: its terminal, and the load its session
// can carry beside the share (nil: none, as shwim has no file transfer).
type shareGuest struct {
	term        *ptyProcess
	sameSession func(b *testing.B) runningLoad
}

// shareLoad is what runs beside the samples.
type shareLoad struct {
	name, describe string
	// start starts it (nil: idle; a nil start for the route: not
	// measured).
	start func(b *testing.B, guest shareGuest) runningLoad
}

// runningLoad is a load that runs: ended says whether it is over, stop
// ends it (or waits for its end).
type runningLoad interface {
	ended() bool
	stop()
}

// processLoad is a load that is a process.
type processLoad struct{ *process }

func (p processLoad) ended() bool { return p.exited() }

func ptyRoute(setup func(b *testing.B) *ptyProcess) func(b *testing.B) shareGuest {
	return func(b *testing.B) shareGuest { return shareGuest{term: setup(b)} }
}

// echoRun is one route under one load.
type echoRun struct {
	p50, p99, max time.Duration
	n             int
	stall         error
	restarts      int // the load ended during the samples and was started again
	// sched is how long this process's goroutines waited to run while
	// the samples were taken (runtime/metrics): for the in-process
	// guest, what Go's scheduler added.
	sched schedHistogram
	// mutexShare is the time this process's goroutines spent blocked on
	// a sync.Mutex during the samples, per second of them.
	mutexShare float64
}

// mutexWait is runtime/metrics' /sync/mutex/wait/total:seconds.
func mutexWait() time.Duration {
	s := []metrics.Sample{{Name: "/sync/mutex/wait/total:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// schedHistogram is runtime/metrics' /sched/latencies:seconds.
type schedHistogram struct {
	counts  []uint64
	buckets []float64
}

func schedLatencies() schedHistogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return schedHistogram{}
	}
	h := s[0].Value.Float64Histogram()
	return schedHistogram{counts: slices.Clone(h.Counts), buckets: h.Buckets}
}

// since is what was counted after before.
func (h schedHistogram) since(before schedHistogram) schedHistogram {
	if len(before.counts) != len(h.counts) {
		return h
	}
	d := schedHistogram{counts: make([]uint64, len(h.counts)), buckets: h.buckets}
	for i := range h.counts {
		d.counts[i] = h.counts[i] - before.counts[i]
	}
	return d
}

// quantile is the upper bound of the bucket holding the q quantile.
func (h schedHistogram) quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			upper := h.buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = h.buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}

func (r echoRun) String() string {
	if r.stall != nil {
		return fmt.Sprintf("stalled after %d: %v", r.n, r.stall)
	}
	s := fmt.Sprintf("%s / %s ms", ms(r.p50), ms(r.p99))
	if len(r.sched.counts) > 0 {
		s += fmt.Sprintf(" [sched p99 %s, mutex %.0f ms/s]", ms(r.sched.quantile(0.99)), r.mutexShare*1000)
	}
	if r.restarts > 0 {
		s += fmt.Sprintf(" (load restarted %d×)", r.restarts)
	}
	return s
}

// ganderAppPair is the share between two gander peers in their normal
// session (fowl's app id, terminal-v1): the host is `gander --json`,
// which starts the share and lets the guest type when asked; the guest
// is a session of the benchmark's own (the session API the app's view
// runs on: --json cannot show a share), its view on a terminal of the
// benchmark's in raw mode. Its same-session load: the host sends file.
func ganderAppPair(b *testing.B, mailboxURL, file string) shareGuest {
	// GANDER_SHARE_GOMAXPROCS sets both peers' (an experiment: how much
	// of the wait is for a P).
	var env []string
	if n := os.Getenv("GANDER_SHARE_GOMAXPROCS"); n != "" {
		env = []string{"GOMAXPROCS=" + n}
		if procs, err := strconv.Atoi(n); err == nil {
			b.Cleanup(func() { runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs)) })
		}
	}
	// GANDER_SHARE_HOST_INPROCESS=1 runs the host as a session of the
	// benchmark's too (an experiment: the scheduling latency then
	// covers the host).
	var h shareHost
	if os.Getenv("GANDER_SHARE_HOST_INPROCESS") != "" {
		h = inProcessHost(b, mailboxURL)
	} else {
		h = jsonHost(b, mailboxURL, env)
	}

	guest, events, keys := startGuestSession(b, mailboxURL, h.code)
	h.peerConnected()
	// Right after peer-connected the host's session may still refuse a
	// share ("wait for the peer": the peer's terminal-v1 is not up yet):
	// ask again until the guest sees it offered.
	offered := func(ev session.Event) bool {
		o, ok := ev.(session.ShareOffered)
		return ok && !o.Outgoing
	}
	for attempt := 0; ; attempt++ {
		h.startShare()
		if events.within(2*time.Second, offered) {
			break
		}
		if attempt == 15 {
			b.Fatal("the host's share was not offered after 16 share-starts")
		}
	}

	term, tty := openTerminal(b, shareCols, shareRows)
	if _, err := xterm.MakeRaw(tty.Fd()); err != nil {
		b.Fatal(err)
	}
	reader, err := cancelreader.NewReader(tty)
	if err != nil {
		b.Fatal(err)
	}
	*keys = reader
	viewDone := make(chan error, 1)
	guest.Do(session.WatchShare{View: session.TerminalView{
		In: *keys, Out: tty, Done: viewDone,
		Size: func() session.WinSize { return session.WinSize{Cols: shareCols, Rows: shareRows} },
	}})
	guest.Do(session.AskKeyboard{})
	h.allowTyping()
	events.wait(b, "the keyboard", func(ev session.Event) bool {
		t, ok := ev.(session.ShareTyping)
		return ok && t.Allowed
	})
	return shareGuest{term: term, sameSession: func(b *testing.B) runningLoad {
		finishedBefore := events.count(transferFinished)
		progressBefore := events.count(transferFlowing)
		h.sendFile(file)
		events.waitCount(b, "the file flowing", transferFlowing, progressBefore+1)
		return &transferLoad{b: b, events: events, finishedBefore: finishedBefore, started: time.Now(), size: fileSize(b, file)}
	}}
}

// shareHost is the host of ganderAppPair: gander --json, or a session
// of the benchmark's.
type shareHost struct {
	code          string
	peerConnected func()
	startShare    func()
	allowTyping   func() // once the guest has asked
	sendFile      func(path string)
}

func jsonHost(b *testing.B, mailboxURL string, env []string) shareHost {
	host := startProcess(b, scratch, "env", append(env, ganderBin(b), "--json", "--mailbox", mailboxURL, "--relay", "tcp:127.0.0.1:1")...)
	jsonCommand(b, host, `{"kind": "allocate-code", "length": 2}`)
	code := host.waitFor(b, regexp.MustCompile(`"code": "([^"]+)", "kind": "code-allocated"`), 30*time.Second)[1]
	return shareHost{
		code:          code,
		peerConnected: func() { host.waitFor(b, regexp.MustCompile(`"kind": "peer-connected"`), 60*time.Second) },
		startShare: func() {
			jsonCommand(b, host, fmt.Sprintf(`{"kind": "share-start", "command": %q, "cols": %d, "rows": %d}`, rawEchoCommand, shareCols, shareRows))
		},
		allowTyping: func() {
			host.waitFor(b, regexp.MustCompile(`"kind": "share-keyboard-requested"`), 30*time.Second)
			jsonCommand(b, host, `{"kind": "share-allow-typing"}`)
		},
		sendFile: func(path string) { jsonCommand(b, host, fmt.Sprintf(`{"kind": "send-file", "path": %q}`, path)) },
	}
}

func inProcessHost(b *testing.B, mailboxURL string) shareHost {
	s, events := startSession(b, session.Config{MailboxURL: mailboxURL, TransitRelay: "tcp:127.0.0.1:1", CodeLength: 2}, nil)
	s.Do(session.AllocateCode{Length: 2})
	code := events.wait(b, "the code", func(ev session.Event) bool { _, ok := ev.(session.CodeReady); return ok }).(session.CodeReady).Code
	return shareHost{
		code: code,
		peerConnected: func() {
			events.wait(b, "the peer", func(ev session.Event) bool { _, ok := ev.(session.PeerConnected); return ok })
		},
		startShare: func() {
			s.Do(session.StartShare{Command: []string{"/bin/sh", "-c", rawEchoCommand}, Size: session.WinSize{Cols: shareCols, Rows: shareRows}})
		},
		allowTyping: func() {
			events.wait(b, "the guest's ask", func(ev session.Event) bool { _, ok := ev.(session.ShareKeyboardRequested); return ok })
			s.Do(session.AllowTyping{})
		},
		sendFile: func(path string) { s.Do(session.SendFiles{Paths: []string{path}}) },
	}
}

// startGuestSession joins code; keys is the view's keyboard, once the
// caller has made it (cleanup cancels it before the session ends and
// closes it after).
func startGuestSession(b *testing.B, mailboxURL, code string) (*session.Session, *sessionEvents, *cancelreader.CancelReader) {
	keys := new(cancelreader.CancelReader)
	s, events := startSession(b, session.Config{
		MailboxURL: mailboxURL, TransitRelay: "tcp:127.0.0.1:1", Code: code,
		SaveDir: b.TempDir(), AcceptFiles: true,
	}, keys)
	return s, events, keys
}

// startSession starts a session of the benchmark's; cleanup ends it
// (its view and keyboard first).
func startSession(b *testing.B, cfg session.Config, keys *cancelreader.CancelReader) (*session.Session, *sessionEvents) {
	b.Helper()
	cfg.ClientVersion, cfg.Logger = "e2e", slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := session.Start(ctx, cfg)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	events := newSessionEvents(s)
	b.Cleanup(func() {
		s.Do(session.DetachShare{})
		if keys != nil && *keys != nil {
			(*keys).Cancel()
		}
		s.Do(session.Close{Timeout: time.Second})
		done := make(chan struct{})
		go func() { s.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.Error("a session of the benchmark's did not end within 10 s")
		}
		cancel()
		select {
		case <-events.done:
		case <-time.After(10 * time.Second):
			b.Error("a session's events did not end within 10 s of its context")
		}
		if keys != nil && *keys != nil {
			(*keys).Close()
		}
	})
	return s, events
}

// transferLoad is a file the guest's session receives: the one after
// the first finishedBefore.
type transferLoad struct {
	b              *testing.B
	events         *sessionEvents
	finishedBefore int
	started        time.Time // when the file was sent (its rate is printed)
	size           int64
	stopped        bool
}

func (l *transferLoad) ended() bool { return l.events.count(transferFinished) > l.finishedBefore }

// stop waits for the file to arrive whole (1 GiB takes seconds).
func (l *transferLoad) stop() {
	if l.stopped {
		return
	}
	l.stopped = true
	ev := l.events.waitCount(l.b, "the file's end", transferFinished, l.finishedBefore+1)
	if err := ev.(session.TransferFinished).Err; err != nil {
		l.b.Fatalf("the same-session file: %v", err)
	}
	// Roughly: the end is seen when stop is called, at most a sample later.
	fmt.Printf("same-session file: %d MiB in %v (%.0f MB/s, the end seen at most a sample late)\n",
		l.size>>20, time.Since(l.started).Round(time.Millisecond), float64(l.size)/time.Since(l.started).Seconds()/1e6)
}

func fileSize(b *testing.B, path string) int64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func transferFlowing(ev session.Event) bool {
	p, ok := ev.(session.TransferProgress)
	return ok && !p.Outgoing && p.Done > 0 && p.Done < p.Size
}

func transferFinished(ev session.Event) bool {
	f, ok := ev.(session.TransferFinished)
	return ok && !f.Outgoing
}

func jsonCommand(b *testing.B, p *process, line string) {
	b.Helper()
	p.writeStdin(b, line+"\n")
}

// sessionEvents keeps every event of a session the benchmark runs.
type sessionEvents struct {
	done chan struct{} // the session's events have ended

	mu      sync.Mutex
	events  []session.Event
	flowing map[int64]bool // transfers whose flowing progress is kept
	changed chan struct{}
}

func newSessionEvents(s *session.Session) *sessionEvents {
	e := &sessionEvents{done: make(chan struct{}), changed: make(chan struct{}), flowing: map[int64]bool{}}
	go func() {
		defer close(e.done)
		for ev := range s.Events() {
			e.mu.Lock()
			// Of a transfer's many progress events only the first that
			// shows it flowing is kept.
			if p, progress := ev.(session.TransferProgress); !progress || transferFlowing(p) && !e.flowing[p.ID] {
				e.events = append(e.events, ev)
				if progress {
					e.flowing[p.ID] = true
				}
			}
			close(e.changed)
			e.changed = make(chan struct{})
			e.mu.Unlock()
		}
	}()
	return e
}

func (e *sessionEvents) find(match func(session.Event) bool) (session.Event, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if match(ev) {
			return ev, nil
		}
	}
	return nil, e.changed
}

// within says whether an event that matches comes within d.
func (e *sessionEvents) within(d time.Duration, match func(session.Event) bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ev, changed := e.find(match)
		if ev != nil {
			return true
		}
		select {
		case <-changed:
		case <-e.done:
			return false
		case <-deadline.C:
			return false
		}
	}
}

// count is how many events so far match.
func (e *sessionEvents) count(match func(session.Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if match(ev) {
			n++
		}
	}
	return n
}

// waitCount waits up to a minute for the nth event that matches.
func (e *sessionEvents) waitCount(b *testing.B, what string, match func(session.Event) bool, n int) session.Event {
	b.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		seen, changed := 0, e.changed
		for _, ev := range e.events {
			if match(ev) {
				if seen++; seen == n {
					e.mu.Unlock()
					return ev
				}
			}
		}
		e.mu.Unlock()
		select {
		case <-changed:
		case <-e.done:
			b.Fatalf("the guest's session ended waiting for %s", what)
		case <-deadline.C:
			b.Fatalf("no %s within a minute (%d of %d)", what, seen, n)
		}
	}
}

// wait waits up to a minute for an event that matches.
func (e *sessionEvents) wait(b *testing.B, what string, match func(session.Event) bool) session.Event {
	b.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		ev, changed := e.find(match)
		if ev != nil {
			return ev
		}
		select {
		case <-changed:
		case <-e.done:
			b.Fatalf("the guest's session ended waiting for %s", what)
		case <-deadline.C:
			e.mu.Lock()
			last := slices.Clone(e.events[max(0, len(e.events)-20):])
			e.mu.Unlock()
			b.Fatalf("no %s within a minute; the guest's last events: %+v", what, last)
		}
	}
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
	shell := echoShell(b)
	host := startPTY(b, shareCols, shareRows, []string{"SHELL=" + shell}, shwim, "--mailbox", mailboxURL)
	code := host.waitFor(shwimHostCode, 30*time.Second)[1]
	guest := startPTY(b, shareCols, shareRows, nil, shwim, "--mailbox", mailboxURL, code)
	// tty-share's host starts the shell once Enter is pressed.
	host.waitFor(regexp.MustCompile(`Press Enter to continue`), 60*time.Second)
	host.write("\r")
	go discardOutput(host)
	return guest
}

// ttySharePair is tty-share's server and client on loopback, as shwim
// runs them but without the wormhole between them.
func ttySharePair(b *testing.B) *ptyProcess {
	shell := echoShell(b)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(b))
	host := startPTY(b, shareCols, shareRows, nil, "tty-share", "--listen", addr, "--command", shell)
	host.waitFor(regexp.MustCompile(`Press Enter to continue`), 30*time.Second)
	host.write("\r")
	go discardOutput(host)
	var guest *ptyProcess
	for attempt := 0; ; attempt++ { // until the server listens
		guest = startPTY(b, shareCols, shareRows, nil, "tty-share", "http://"+addr+"/s/local/")
		time.Sleep(time.Second)
		if !guest.exited() || attempt == 9 {
			return guest
		}
	}
}

// echoShell is the shell tty-share runs ($SHELL, or --command): the raw
// echo. It skips the benchmark without tty-share.
func echoShell(b *testing.B) string {
	b.Helper()
	if _, err := exec.LookPath("tty-share"); err != nil {
		b.Skip("tty-share is not installed (e2e/test.sh installs it)")
	}
	shell := filepath.Join(b.TempDir(), "echo-shell")
	if err := os.WriteFile(shell, []byte("#!/bin/sh\n"+rawEchoCommand+"\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	return shell
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

// measureShareEcho takes the samples with load running; false if the
// load does not apply to the route.
func measureShareEcho(b *testing.B, g shareGuest, load shareLoad) (echoRun, bool) {
	b.Helper()
	guest := g.term
	var running runningLoad
	if load.start != nil {
		if running = load.start(b, g); running == nil {
			return echoRun{}, false
		}
		time.Sleep(shareLoadHeadStart)
		if running.ended() {
			b.Fatalf("the load (%s) ended before the samples began", load.name)
		}
	}
	var r echoRun
	var samples []time.Duration
	schedBefore, mutexBefore, began := schedLatencies(), mutexWait(), time.Now()
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
		if i%50 == 25 && running != nil && os.Getenv("GANDER_SHARE_SS") != "" {
			out, _ := exec.Command("ss", "-tnio").CombinedOutput()
			fmt.Printf("ss during %s, sample %d (%v):\n%s\n", load.name, i, at.Sub(sent), out)
		}
		// A load that is over starts again: the samples take longer
		// than a transfer (shwim's echo takes ~90 ms).
		if running != nil && running.ended() {
			running.stop()
			running = load.start(b, g)
			r.restarts++
		}
		if now := time.Now(); next.Before(now) {
			next = now
		}
	}
	r.sched = schedLatencies().since(schedBefore)
	r.mutexShare = float64(mutexWait()-mutexBefore) / float64(time.Since(began))
	if running != nil {
		running.stop()
	}
	r.n = len(samples)
	if len(samples) > 0 {
		slices.Sort(samples)
		r.p50, r.p99, r.max = nearestRank(samples, 0.5), nearestRank(samples, 0.99), samples[len(samples)-1]
	}
	time.Sleep(time.Second) // the queues drain before the next run
	return r, true
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
	return classicTransfer(b, venvBin(b, "wormhole"), mailboxURL, relayHint, file)
}

// ganderTransfer is pyTransfer with gander's send and receive.
func ganderTransfer(b *testing.B, mailboxURL, relayHint, file string) *process {
	b.Helper()
	return classicTransfer(b, ganderBin(b), mailboxURL, relayHint, file)
}

// classicTransfer runs `PROGRAM send` of file to `PROGRAM receive`
// (magic-wormhole's command line, which gander's speaks too) and returns
// the receiver.
func classicTransfer(b *testing.B, program, mailboxURL, relayHint, file string) *process {
	b.Helper()
	// magic-wormhole takes these before the subcommand; gander after it.
	args := func(sub string, rest ...string) []string {
		common := []string{"--relay-url", mailboxURL, "--transit-helper", relayHint}
		if filepath.Base(program) == "gander" {
			return append(append([]string{sub}, common...), rest...)
		}
		return append(append(common, sub), rest...)
	}
	send := startProcess(b, filepath.Dir(file), program, args("send", "--hide-progress", file)...)
	code := send.waitFor(b, codeLine, 30*time.Second)[1]
	return startProcess(b, b.TempDir(), program, args("receive", "--hide-progress", "--accept-file", code)...)
}

// printShare prints the table: per route, idle and each load, and the
// goal (under load ≤ 1.5 × idle + 5 ms, p50 and p99 each).
func printShare(routes []shareRoute, loads []shareLoad, results map[string]map[string]echoRun) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nkeystroke → echo through a shared terminal: %d samples every %v, p50 / p99\n", shareEchoSamples, shareEchoInterval)
	fmt.Fprintf(&sb, "%-36s", "route")
	for _, l := range loads {
		fmt.Fprintf(&sb, " %-38s", l.name)
	}
	sb.WriteString(" goal: load ≤ 1.5×idle + 5 ms\n")
	for _, r := range routes {
		res := results[r.name]
		if len(res) == 0 {
			continue
		}
		fmt.Fprintf(&sb, "%-36s", r.name)
		for _, l := range loads {
			if run, ok := res[l.name]; ok {
				fmt.Fprintf(&sb, " %-38s", run)
			} else {
				fmt.Fprintf(&sb, " %-38s", "n/a")
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
	// gander's routes against shwim's, load by load.
	ratio := func(a, b string) {
		ra, rb := results[a], results[b]
		for _, l := range loads {
			if x, y := ra[l.name], rb[l.name]; x.n > 0 && y.n > 0 && x.stall == nil && y.stall == nil {
				fmt.Fprintf(&sb, "%s / %s, %s: p50 %.3f×, p99 %.3f×\n", a, b, l.name,
					float64(x.p50)/float64(y.p50), float64(x.p99)/float64(y.p99))
			}
		}
	}
	for _, r := range routes {
		if strings.HasPrefix(r.name, "gander") {
			ratio(r.name, "shwim ↔ shwim")
		}
	}
	sb.WriteString("loads:\n")
	for _, l := range loads[1:] {
		fmt.Fprintf(&sb, "  %s: %s\n", l.name, l.describe)
	}
	fmt.Print(sb.String())
}
