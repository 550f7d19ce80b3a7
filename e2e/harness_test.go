// Package e2e runs gander against the real Python programs: the mailbox
// server, the transit relay, the `wormhole` CLI, magic-wormhole's Dilation
// and fowl. ./e2e/test.sh installs them into a venv and runs these tests in
// a loopback-only network namespace; without it they are skipped.
//
// This file is the harness: it starts those programs on 127.0.0.1, bounds
// their lifetime, collects their output (shown only when a test fails) and
// stops them, with their process groups, when the test ends.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds on everything the harness waits for, so that a stuck program fails
// its test instead of hanging the suite until go test's own timeout.
const (
	maxProcessLifetime = 10 * time.Minute // then the process group is killed
	serverStartTimeout = 30 * time.Second // a Python server starting on a loaded CI machine
	stopGracePeriod    = 5 * time.Second  // between SIGTERM and SIGKILL
	buildTimeout       = 5 * time.Minute
)

// scratch is a directory shared by the whole run: the gander binary lives
// there and the CLI processes run in it. TestMain removes it.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gander-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ganderPackage is what ganderBin builds: the command at the module root.
const ganderPackage = "github.com/gander-pair/gander"

var (
	buildOnce    sync.Once
	ganderBinary string
	buildErr     error
)

// ganderBin builds the gander command the first time a test needs it and
// returns its path. The build is lazy so that the tests that do not run
// gander (the harness's own, the Python smoke tests) still run, and say
// something useful, while the command does not build. It needs no network:
// ./e2e/test.sh downloads the modules before entering the namespace.
func ganderBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		bin := filepath.Join(scratch, "gander")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ganderPackage).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build %s: %v\n%s", ganderPackage, err, out)
			return
		}
		ganderBinary = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ganderBinary
}

// venvBin returns the path of a program installed in the test venv
// (GANDER_E2E_VENV, set by ./e2e/test.sh); outside the script it skips the
// test. It also refuses to run where a non-loopback address is up: the
// Python peers advertise every local address as a connection hint and
// dial the other side's hints, so on a normal host an e2e test could
// connect through the machine's real interfaces (and pass or fail for
// reasons that have nothing to do with gander). The script runs the tests
// in a network namespace that has only lo.
func venvBin(t testing.TB, name string) string {
	t.Helper()
	venv := os.Getenv("GANDER_E2E_VENV")
	if venv == "" {
		t.Skip("e2e: run ./e2e/test.sh")
	}
	requireLoopbackOnly(t)
	bin := filepath.Join(venv, "bin", name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: the venv is incomplete; ./e2e/test.sh recreates it", err)
	}
	return bin
}

// requireLoopbackOnly fails the test unless every address of every
// interface that is up is a loopback address.
func requireLoopbackOnly(t testing.TB) {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() {
				t.Fatalf("interface %s is up with the non-loopback address %s: run the e2e tests through ./e2e/test.sh, "+
					"which gives them a loopback-only network namespace", ifi.Name, ipnet.IP)
			}
		}
	}
}

// freePort returns a TCP port that is free on 127.0.0.1, for a program
// that must be told which port to listen on (and keep it across a
// restart). The port is drawn below the kernel's ephemeral range, which is
// where outgoing connections and listeners on port 0 get theirs: otherwise
// any of them (the other packages' tests run in parallel in the same
// namespace) could take it between this check and the program's bind. It
// never hands out the same port twice.
func freePort(t testing.TB) int {
	t.Helper()
	low := ephemeralPortsStart()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		port := minFreePort + rand.IntN(low-minFreePort)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return port
	}
	t.Fatalf("no free port found in [%d, %d)", minFreePort, low)
	return 0
}

// minFreePort is the lowest port freePort hands out, well above the
// well-known and usual service ports.
const minFreePort = 10000

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralPortsStart is the first port of the kernel's ephemeral range
// (Linux's default 32768 if it cannot be read, or is too low to leave room
// below it).
func ephemeralPortsStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low < minFreePort+1000 {
		return 32768
	}
	return low
}

// process is a program started by a test: bounded in time, killed with its
// process group at cleanup, its output kept for assertions and logged when
// the test fails.
type process struct {
	name  string // the program's base name, for messages
	args  []string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed once it has exited and its output is complete
	err   error         // cmd.Wait's result; read it only after done

	mu      sync.Mutex
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	changed chan struct{} // closed (and replaced) at every write: wakes waitFor
}

// outputWriter appends to one of a process's buffers and wakes whoever
// waits for its output.
type outputWriter struct {
	p   *process
	buf *bytes.Buffer
}

func (w outputWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	close(w.p.changed)
	w.p.changed = make(chan struct{})
	return w.buf.Write(b)
}

// startProcess starts name with args in dir ("" for the package directory)
// and returns at once. It runs in its own process group, so that stopping
// it also stops whatever it started, with PYTHONUNBUFFERED=1, so that a
// Python program's output shows up as it is printed rather than when it
// exits, and with a pipe on stdin (see writeStdin).
func startProcess(t testing.TB, dir, name string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), maxProcessLifetime)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Should something in the group outlive the process and keep its
	// output pipes open, Wait gives up on them after this long.
	cmd.WaitDelay = stopGracePeriod
	p := &process{name: filepath.Base(name), args: args, cmd: cmd, done: make(chan struct{}), changed: make(chan struct{})}
	cmd.Stdout = outputWriter{p, &p.stdout}
	cmd.Stderr = outputWriter{p, &p.stderr}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s %q (%v):\n%s", p.name, p.args, p.err, p.output())
		}
	})
	return p
}

// stop asks the process group to terminate and kills it if it has not
// exited after stopGracePeriod. It returns once the process has exited.
func (p *process) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGracePeriod):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output is both streams, labelled, for failure messages.
func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "--- stdout\n" + p.stdout.String() + "--- stderr\n" + p.stderr.String()
}

func (p *process) stdoutText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

func (p *process) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitFor waits until re matches the process's output (stdout followed by
// stderr) and returns the submatches. It fails the test if the process
// exits, or timeout passes, without a match.
func (p *process) waitFor(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	m, err := p.match(re, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// match is waitFor returning an error instead of failing the test.
func (p *process) match(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		m := re.FindStringSubmatch(p.stdout.String() + p.stderr.String())
		changed := p.changed
		p.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-p.done:
			// Its output is complete: one last look.
			if m := re.FindStringSubmatch(p.stdoutText() + p.stderrText()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("%s exited (%v) without output matching %q", p.name, p.err, re)
		case <-deadline.C:
			return nil, fmt.Errorf("%s: no output matching %q within %v", p.name, re, timeout)
		}
	}
}

// wait waits for the process to exit and returns its error (nil for exit
// status 0). It fails the test if the process still runs after timeout.
func (p *process) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case <-p.done:
		return p.err
	case <-deadline.C:
		t.Fatalf("%s still running after %v", p.name, timeout)
		return nil
	}
}

// writeStdin writes s to the process's standard input. The pipe holds
// 64 KiB: write more only to a process that reads it.
func (p *process) writeStdin(t testing.TB, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("writing to %s's stdin: %v", p.name, err)
	}
}

// closeStdin closes the process's standard input: it reads end of file.
func (p *process) closeStdin(t testing.TB) {
	t.Helper()
	if err := p.stdin.Close(); err != nil {
		t.Fatalf("closing %s's stdin: %v", p.name, err)
	}
}

// waitListening waits until something accepts TCP connections on addr,
// which a server started by p does once it is ready. (The Twisted servers
// below say so in their log instead, which is more precise: see startTwist.)
func waitListening(t testing.TB, addr string, p *process) {
	t.Helper()
	deadline := time.NewTimer(serverStartTimeout)
	defer deadline.Stop()
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-retry.C:
		case <-p.done:
			t.Fatalf("%s exited (%v) before listening on %s", p.name, p.err, addr)
		case <-deadline.C:
			t.Fatalf("%s did not listen on %s within %v", p.name, addr, serverStartTimeout)
		}
	}
}

// errPortInUse is startTwist's answer when the server could not bind its
// port.
var errPortInUse = errors.New("port already in use")

// startTwist runs a Twisted server plugin, `twist --log-format=text
// PLUGIN_ARGS...`, told to listen on 127.0.0.1:port, and waits until it
// does. Twisted logs "<factory> starting on PORT" once it listens. A
// server that cannot bind logs CannotListenError and keeps running, and a
// TCP probe would then find whatever else holds the port: so the log is
// what is watched. If the port is taken, startTwist stops the server and
// returns errPortInUse; any other failure fails the test.
func startTwist(t testing.TB, dir string, port int, pluginArgs ...string) (*process, error) {
	t.Helper()
	p := startProcess(t, dir, venvBin(t, "twist"), append([]string{"--log-format=text"}, pluginArgs...)...)
	listening := regexp.MustCompile(`(?m) starting on ` + strconv.Itoa(port) + `$|(CannotListenError)`)
	m, err := p.match(listening, serverStartTimeout)
	if err != nil {
		t.Fatalf("starting %q: %v", pluginArgs, err)
	}
	if m[1] != "" {
		p.stop()
		return nil, errPortInUse
	}
	return p, nil
}

// startTwistOnFreePort is startTwist on a port of freePort's choosing,
// chosen again should another program take it first. args makes the
// plugin's arguments for a port.
func startTwistOnFreePort(t testing.TB, dir string, args func(port string) []string) (*process, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		p, err := startTwist(t, dir, port, args(strconv.Itoa(port))...)
		if err == nil {
			return p, port
		}
		if attempt == 3 {
			t.Fatalf("starting %q: %v, three times", args("PORT"), err)
		}
	}
}

// mailboxServer is the real magic-wormhole-mailbox-server (`twist
// wormhole-mailbox`) on a free loopback port.
type mailboxServer struct {
	URL  string // ws://127.0.0.1:PORT/v1, what clients are given
	Addr string // 127.0.0.1:PORT, for a proxy in front of it

	port  int
	dir   string // its working directory, holding the channel database
	flags []mailboxFlag
	proc  *process
}

// mailboxFlag is an extra command-line flag for the mailbox server, such as
// withMOTD(...) or withWelcomeError(...).
type mailboxFlag string

// withMOTD makes the server's welcome message carry a message of the day,
// which clients show.
func withMOTD(text string) mailboxFlag { return mailboxFlag("--motd=" + text) }

// withWelcomeError makes the server's welcome carry an error: every client
// must give up with that message.
func withWelcomeError(text string) mailboxFlag { return mailboxFlag("--signal-error=" + text) }

// startMailbox runs the mailbox server until the test ends. Its channel
// database is a file in a temporary directory, so that a Restart keeps the
// nameplates, mailboxes and messages; no usage database is kept, and the
// log (twist's, as text) goes to the process's output.
func startMailbox(t testing.TB, flags ...mailboxFlag) *mailboxServer {
	t.Helper()
	s := &mailboxServer{dir: t.TempDir(), flags: flags}
	s.proc, s.port = startTwistOnFreePort(t, s.dir, s.args)
	s.Addr = "127.0.0.1:" + strconv.Itoa(s.port)
	s.URL = "ws://" + s.Addr + "/v1"
	return s
}

func (s *mailboxServer) args(port string) []string {
	args := []string{"wormhole-mailbox",
		"--port=tcp:" + port + ":interface=127.0.0.1",
		"--channel-db=" + filepath.Join(s.dir, "channel.sqlite")}
	for _, f := range s.flags {
		args = append(args, string(f))
	}
	return args
}

// Restart stops the server and starts it again on the same port with the
// same database: clients see their websocket drop and must reconnect, and
// find their state where they left it.
func (s *mailboxServer) Restart(t testing.TB) {
	t.Helper()
	s.proc.stop()
	p, err := startTwist(t, s.dir, s.port, s.args(strconv.Itoa(s.port))...)
	if err != nil {
		t.Fatalf("restarting the mailbox server on %s: %v", s.Addr, err)
	}
	s.proc = p
}

// transitRelay is the real magic-wormhole-transit-relay (`twist
// transitrelay`) on a free loopback port.
type transitRelay struct {
	Addr string // 127.0.0.1:PORT
	Hint string // tcp:127.0.0.1:PORT, as relay locations are written (--transit-helper)
}

// startRelay runs the transit relay until the test ends, keeping no usage
// database.
func startRelay(t testing.TB) *transitRelay {
	t.Helper()
	_, port := startTwistOnFreePort(t, t.TempDir(), func(port string) []string {
		return []string{"transitrelay", "--port=tcp:" + port + ":interface=127.0.0.1"}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return &transitRelay{Addr: addr, Hint: "tcp:" + addr}
}

// faultProxy forwards TCP connections from 127.0.0.1 to a target, and can
// cut them all at once: the way to test that something survives a dropped
// connection (to the mailbox, to the relay) without stopping the server.
// Outage and Blackhole take the path away for a while.
type faultProxy struct {
	Addr string // 127.0.0.1:PORT, where to connect instead of the target

	target string
	wg     sync.WaitGroup // the accept loops and one goroutine per forwarded connection

	mu       sync.Mutex
	closed   bool         // by cleanup: forward nothing more
	listener net.Listener // nil during an Outage
	held     bool         // during a Blackhole: hold new connections, forward nothing
	live     map[*proxiedConn]struct{}
	accepted int
	changed  chan struct{} // closed (and replaced) when accepted grows
}

// proxiedConn is one forwarded connection: both of its halves (server is
// nil for a connection held by a Blackhole, which never reaches the
// target).
type proxiedConn struct{ client, server net.Conn }

func (c *proxiedConn) close() {
	c.client.Close()
	if c.server != nil {
		c.server.Close()
	}
}

// startProxy listens on a free loopback port and forwards every connection
// to target until the test ends; cleanup closes everything and waits for
// every goroutine.
func startProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{
		Addr:     l.Addr().String(),
		target:   target,
		listener: l,
		live:     map[*proxiedConn]struct{}{},
		changed:  make(chan struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop(l)
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		if p.listener != nil {
			p.listener.Close()
		}
		p.mu.Unlock()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// acceptLoop forwards (or, during a Blackhole, holds) the connections l
// accepts until l is closed, by cleanup or an Outage.
func (p *faultProxy) acceptLoop(l net.Listener) {
	defer p.wg.Done()
	for {
		client, err := l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		held := p.held
		p.mu.Unlock()
		var server net.Conn
		if !held {
			server, err = net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				client.Close() // the client sees the target's refusal
				continue
			}
		}
		c := &proxiedConn{client, server}
		p.mu.Lock()
		// The path went away while this one dialed the target: it goes
		// with the others.
		if p.closed || p.listener != l || p.held != held {
			p.mu.Unlock()
			c.close()
			if p.closed {
				return
			}
			continue
		}
		p.live[c] = struct{}{}
		p.accepted++
		p.wakeLocked()
		p.wg.Add(1)
		p.mu.Unlock()
		if held {
			go p.hold(c)
		} else {
			go p.forward(c)
		}
	}
}

// wakeLocked wakes whoever waits on p.changed.
func (p *faultProxy) wakeLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// hold keeps a connection accepted during a Blackhole open, reading and
// dropping what the client sends, until the Blackhole's end closes it.
func (p *faultProxy) hold(c *proxiedConn) {
	defer p.wg.Done()
	io.Copy(io.Discard, c.client)
	c.close()
	p.mu.Lock()
	delete(p.live, c)
	p.mu.Unlock()
}

// forward copies both ways until both directions end, passing a half-close
// on (the other side of a proxied connection sees what it would without
// the proxy), then closes both halves.
func (p *faultProxy) forward(c *proxiedConn) {
	defer p.wg.Done()
	done := make(chan struct{})
	go func() {
		copyHalf(c.server, c.client)
		close(done)
	}()
	copyHalf(c.client, c.server)
	<-done
	c.close()
	p.mu.Lock()
	delete(p.live, c)
	p.mu.Unlock()
}

// copyHalf copies from src to dst. When src ends cleanly it passes the
// half-close on; when either side fails (a reset, or Cut) it closes both.
func copyHalf(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err == nil {
		if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	src.Close()
}

// Outage takes the path away for d as a network failure would: it closes
// every live connection (both halves) and the listener, so that a dial
// gets "connection refused", then listens again on the same address (Go
// sets SO_REUSEADDR). It returns the moment the new listener is up: when
// the path came back.
func (p *faultProxy) Outage(t testing.TB, d time.Duration) time.Time {
	t.Helper()
	p.mu.Lock()
	l := p.listener
	if p.closed || l == nil || p.held {
		p.mu.Unlock()
		t.Fatal("faultProxy.Outage: the proxy is closed or already cut off")
	}
	p.listener = nil
	p.mu.Unlock()
	l.Close()
	p.Cut()
	time.Sleep(d)
	// The old port is ours: only a connection in TIME_WAIT could hold
	// it, which SO_REUSEADDR allows; retry briefly all the same.
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if l, err = net.Listen("tcp", p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("faultProxy.Outage: listening again on %s: %v", p.Addr, err)
	}
	back := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		l.Close()
		return back
	}
	p.listener = l
	p.wg.Add(1)
	go p.acceptLoop(l)
	return back
}

// Blackhole is an Outage that refuses nothing: it cuts every live
// connection, then for d accepts new ones but forwards nothing (a dial
// succeeds, and no answer ever comes), as when the path dies somewhere
// beyond the first hop. At the end it closes the connections it held and
// forwards again; it returns that moment, when the path came back.
func (p *faultProxy) Blackhole(t testing.TB, d time.Duration) time.Time {
	t.Helper()
	p.mu.Lock()
	if p.closed || p.listener == nil || p.held {
		p.mu.Unlock()
		t.Fatal("faultProxy.Blackhole: the proxy is closed or already cut off")
	}
	p.held = true
	for c := range p.live {
		c.close()
	}
	clear(p.live)
	p.mu.Unlock()
	time.Sleep(d)
	p.mu.Lock()
	for c := range p.live {
		c.close()
	}
	clear(p.live)
	p.held = false
	p.mu.Unlock()
	return time.Now()
}

// Cut closes every live connection, both halves, as a network failure
// would (the peers see a reset or end of file); the proxy keeps accepting
// new ones. It returns how many connections it cut.
func (p *faultProxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.live {
		c.close()
	}
	n := len(p.live)
	clear(p.live)
	return n
}

// Live counts the connections the proxy is forwarding now: a connection
// whose both directions ended leaves shortly after its peers saw the end.
func (p *faultProxy) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// Accepted counts the connections the proxy has forwarded so far.
func (p *faultProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// waitAccepted waits until the proxy has forwarded at least n connections,
// and fails the test if that takes longer than timeout.
func (p *faultProxy) waitAccepted(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		accepted, changed := p.accepted, p.changed
		p.mu.Unlock()
		if accepted >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("proxy to %s forwarded %d connections in %v, want %d", p.target, accepted, timeout, n)
		}
	}
}
