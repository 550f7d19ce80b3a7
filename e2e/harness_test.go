// Package e2e runs gander against the real Python programs: the mailbox
// server, the transit relay, the `wormhole` CLI, magic-wormhole's Dilation
// and fowl. ./e2e/test.sh installs them into a venv and runs these tests in
// a loopback-only network namespace; without it they are skipped.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

var scratch string // removed after the tests

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

// venvBin is the path of a program installed in the test venv. It skips
// the test outside ./e2e/test.sh, and refuses to run where a non-loopback
// address exists: the peers advertise and dial every local address, and
// tests must never reach beyond this machine's loopback.
func venvBin(t testing.TB, name string) string {
	t.Helper()
	venv := os.Getenv("GANDER_E2E_VENV")
	if venv == "" {
		t.Skip("end-to-end test: run ./e2e/test.sh")
	}
	requireLoopbackOnly(t)
	return filepath.Join(venv, "bin", name)
}

func requireLoopbackOnly(t testing.TB) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() {
			t.Fatalf("non-loopback address %s is up: run the e2e tests through ./e2e/test.sh (a loopback-only namespace)", ipnet.IP)
		}
	}
}

var (
	buildOnce    sync.Once
	ganderBinary string
	buildErr     error
)

// ganderBin builds the gander command once per test run.
func ganderBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		ganderBinary = filepath.Join(scratch, "gander")
		out, err := exec.Command("go", "build", "-o", ganderBinary, "..").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ganderBinary
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening polls until something accepts TCP connections on addr.
func waitListening(t testing.TB, addr string, p *process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if p.exited() {
			t.Fatalf("%s exited before listening on %s:\n%s", p.name, addr, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within 30s:\n%s", p.name, addr, p.output())
}

// process is a program started by a test: bounded in time, killed (with
// its process group) at cleanup, its output kept for assertions and shown
// when the test fails.
type process struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	err    error
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// maxProcessLifetime bounds every program a test starts.
const maxProcessLifetime = 10 * time.Minute

func startProcess(t testing.TB, dir, name string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), maxProcessLifetime)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	p := &process{name: filepath.Base(name), cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	stdin, err := cmd.StdinPipe()
	if err != nil {
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
			t.Logf("%s %q output:\n%s", p.name, args, p.output())
		}
	})
	return p
}

// stop asks the process group to terminate, then kills it.
func (p *process) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
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

// waitFor polls the combined output until re matches and returns the
// submatches.
func (p *process) waitFor(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		m := re.FindStringSubmatch(p.stdout.String() + p.stderr.String())
		p.mu.Unlock()
		if m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no output matching %q within %v:\n%s", p.name, re, timeout, p.output())
		}
		if p.exited() {
			t.Fatalf("%s exited without output matching %q:\n%s", p.name, re, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its error.
func (p *process) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v:\n%s", p.name, timeout, p.output())
		return nil
	}
}

// mailboxServer is the real magic-wormhole-mailbox-server.
type mailboxServer struct {
	URL  string
	port int
	args []string
	proc *process
}

// startMailbox runs the mailbox server on a free loopback port with its
// database in a temporary directory; extra goes to its command line
// (--motd=..., --signal-error=...).
func startMailbox(t testing.TB, extra ...string) *mailboxServer {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	s := &mailboxServer{
		URL:  fmt.Sprintf("ws://127.0.0.1:%d/v1", port),
		port: port,
		args: append([]string{"wormhole-mailbox",
			"--port=tcp:" + strconv.Itoa(port) + ":interface=127.0.0.1",
			"--channel-db=" + filepath.Join(dir, "channel.sqlite")}, extra...),
	}
	s.start(t, dir)
	return s
}

func (s *mailboxServer) start(t testing.TB, dir string) {
	s.proc = startProcess(t, dir, venvBin(t, "twist"), s.args...)
	waitListening(t, "127.0.0.1:"+strconv.Itoa(s.port), s.proc)
}

// Restart stops the server and starts it again on the same port and
// database: clients see their websocket drop and must reconnect.
func (s *mailboxServer) Restart(t testing.TB) {
	t.Helper()
	s.proc.stop()
	s.start(t, s.proc.cmd.Dir)
}

// transitRelay is the real magic-wormhole-transit-relay.
type transitRelay struct {
	Addr string // 127.0.0.1:PORT
	Hint string // tcp:127.0.0.1:PORT, as relay locations are written
}

func startRelay(t testing.TB) *transitRelay {
	t.Helper()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	proc := startProcess(t, t.TempDir(), venvBin(t, "twist"),
		"transitrelay", "--port=tcp:"+strconv.Itoa(port)+":interface=127.0.0.1")
	waitListening(t, addr, proc)
	return &transitRelay{Addr: addr, Hint: "tcp:" + addr}
}

// faultProxy forwards TCP connections to a target and can cut them all,
// to test that gander survives a dropped connection.
type faultProxy struct {
	Addr     string
	target   string
	listener net.Listener
	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted int
	wg       sync.WaitGroup
}

func startProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{Addr: l.Addr().String(), target: target, listener: l, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = true, true
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

func (p *faultProxy) pipe(from, to net.Conn) {
	defer p.wg.Done()
	io.Copy(to, from)
	from.Close()
	to.Close()
	p.mu.Lock()
	delete(p.conns, from)
	delete(p.conns, to)
	p.mu.Unlock()
}

// Cut closes every live connection; new ones are still accepted.
func (p *faultProxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	n := len(p.conns) / 2
	p.conns = map[net.Conn]bool{}
	return n
}

// Accepted counts the connections the proxy has forwarded.
func (p *faultProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}
