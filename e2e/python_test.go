package e2e

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// Smoke tests of the harness: the real Python programs talking to each
// other through the real servers and the fault proxy, with no gander
// involved. When these pass and a gander test fails, blame gander; when
// these fail, blame the harness or the environment.
//
// They also pin down the Python CLI's output (magic-wormhole 0.24.0), which
// the gander tests parse:
//
//	wormhole send --no-qr --text T   stderr: "Sending text message (SIZE)\n"  (humanize.naturalsize(len(T)): "12 Bytes", "2.0 kB")
//	                                         "Wormhole code is: CODE\n"
//	                                         "On the other computer, please run:\n\nwormhole receive CODE\n\n"
//	                                         ... "text message sent\n", exit status 0
//	                                 stdout: "Note: code has been consumed and can no longer be used.\n"
//	wormhole receive CODE            stdout: repr(T)[1:-1] + "\n", exit status 0
//	                                 stderr: nothing, or progress notes (pythonReceiverNotes)
//
// Without --no-qr the sender also draws the code as a QR code on stderr,
// between the code line and "On the other computer". The receiver prints
// the text the way Python's repr() writes a string, without the quotes: a
// newline comes out as the two characters \n, a backslash doubled,
// non-printable characters as \xNN, printable non-ASCII as it is.

// pythonTimeout bounds each step of a smoke test.
const pythonTimeout = 30 * time.Second

var (
	pythonSenderPreamble = regexp.MustCompile(`^Sending text message \(\d+ Bytes\)\nWormhole code is: (\S+)\n`)
	// What a receiver may print on stderr when its peer is slow (one
	// second) to send its key or its confirmation.
	pythonReceiverNotes = regexp.MustCompile(`^(Waiting for sender\.\.\.\n|Key established, waiting for confirmation\.\.\.\n)*$`)
)

// startPythonWormhole runs the Python CLI against mailboxURL: global flags
// such as --transit-helper go before the subcommand in args.
func startPythonWormhole(t *testing.T, mailboxURL string, args ...string) *process {
	t.Helper()
	return startProcess(t, t.TempDir(), venvBin(t, "wormhole"), append([]string{"--relay-url", mailboxURL}, args...)...)
}

// waitSuccess waits for p to exit with status 0.
func waitSuccess(t *testing.T, p *process) {
	t.Helper()
	if err := p.wait(t, pythonTimeout); err != nil {
		t.Fatalf("%s %q failed: %v", p.name, p.args, err)
	}
}

func TestPythonTextExchange(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	tests := []struct{ name, text, printed string }{
		{"plain", "hello, wörld ✓", "hello, wörld ✓"},
		{"printed as repr", "tab\there\nline2 \\ it's \"q\" \x1b é", `tab\there\nline2 \\ it\'s "q" \x1b é`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send := startPythonWormhole(t, mailbox.URL, "--transit-helper", relay.Hint, "send", "--no-qr", "--text", tt.text)
			code := send.waitFor(t, codeLine, pythonTimeout)[1]
			receive := startPythonWormhole(t, mailbox.URL, "--transit-helper", relay.Hint, "receive", code)
			waitSuccess(t, receive)
			waitSuccess(t, send)

			if got, want := receive.stdoutText(), tt.printed+"\n"; got != want {
				t.Errorf("receiver's stdout = %q, want %q", got, want)
			}
			if got := receive.stderrText(); !pythonReceiverNotes.MatchString(got) {
				t.Errorf("receiver's stderr = %q, want nothing but progress notes", got)
			}
			stderr := send.stderrText()
			if m := pythonSenderPreamble.FindStringSubmatch(stderr); m == nil || m[1] != code {
				t.Errorf("sender's stderr does not start with the size and the code (%s):\n%s", code, stderr)
			}
			if want := "\nwormhole receive " + code + "\n"; !strings.Contains(stderr, want) {
				t.Errorf("sender's stderr does not contain %q:\n%s", want, stderr)
			}
			if !strings.HasSuffix(stderr, "\ntext message sent\n") {
				t.Errorf("sender's stderr does not end with \"text message sent\":\n%s", stderr)
			}
			if got, want := send.stdoutText(), "Note: code has been consumed and can no longer be used.\n"; got != want {
				t.Errorf("sender's stdout = %q, want %q", got, want)
			}
		})
	}
}

// With --no-listen on both sides the only way through is the relay: this
// proves startRelay gives the peers a working transit relay.
func TestPythonFileThroughRelay(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "sent.txt"), filepath.Join(dir, "received.txt")
	const content = "through the relay\n"
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	send := startPythonWormhole(t, mailbox.URL, "--transit-helper", relay.Hint,
		"send", "--no-qr", "--no-listen", "--hide-progress", src)
	code := send.waitFor(t, codeLine, pythonTimeout)[1]
	receive := startPythonWormhole(t, mailbox.URL, "--transit-helper", relay.Hint,
		"receive", "--no-listen", "--hide-progress", "--accept-file", "-o", dst, code)
	waitSuccess(t, receive)
	waitSuccess(t, send)

	got, err := os.ReadFile(dst)
	if err != nil || string(got) != content {
		t.Fatalf("received file: %q, %v; want %q", got, err, content)
	}
	viaRelay := "Receiving (->relay:" + relay.Hint + ")"
	if !strings.Contains(receive.stderrText(), viaRelay) {
		t.Errorf("receiver did not report %q:\n%s", viaRelay, receive.stderrText())
	}
}

// Both Python peers reach the mailbox through a faultProxy, whose cut
// forces the waiting sender to reconnect: proves the proxy forwards and
// cuts real websocket connections.
func TestPythonThroughFaultProxy(t *testing.T) {
	mailbox := startMailbox(t)
	proxy := startProxy(t, mailbox.Addr)
	proxied := "ws://" + proxy.Addr + "/v1"
	const text = "through the proxy"

	send := startPythonWormhole(t, proxied, "send", "--no-qr", "--text", text)
	code := send.waitFor(t, codeLine, pythonTimeout)[1]
	if n := proxy.Cut(); n != 1 {
		t.Fatalf("cut %d connections, want the sender's one", n)
	}
	proxy.waitAccepted(t, 2, pythonTimeout) // the sender is back
	receive := startPythonWormhole(t, proxied, "receive", code)
	waitSuccess(t, receive)
	waitSuccess(t, send)

	if got, want := receive.stdoutText(), text+"\n"; got != want {
		t.Errorf("receiver's stdout = %q, want %q", got, want)
	}
	if got := proxy.Accepted(); got != 3 {
		t.Errorf("the proxy forwarded %d connections, want 3 (sender, sender again, receiver)", got)
	}
}

// The fault proxy on its own, against an echo server: it forwards both
// ways, passes a half-close on, cuts live connections and keeps accepting.
// It needs no venv.
func TestFaultProxy(t *testing.T) {
	proxy := startProxy(t, "127.0.0.1:"+strconv.Itoa(testkit.EchoServer(t)))
	dial := func() *net.TCPConn {
		t.Helper()
		c, err := net.DialTimeout("tcp", proxy.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c.(*net.TCPConn)
	}

	// Forwarding, and a half-close passed on: the echo server sees end of
	// file, answers it in kind, and we read everything then EOF.
	c := dial()
	io.WriteString(c, "ping\n")
	c.CloseWrite()
	if got, err := io.ReadAll(c); string(got) != "ping\n" || err != nil {
		t.Fatalf("echo through the proxy: %q, %v", got, err)
	}

	// A cut ends a live connection; a new one works.
	c = dial()
	r := bufio.NewReader(c)
	io.WriteString(c, "one\n")
	if line, err := r.ReadString('\n'); line != "one\n" || err != nil {
		t.Fatalf("echo: %q, %v", line, err)
	}
	proxy.waitAccepted(t, 2, 5*time.Second)
	// The first connection ended at both peers; the proxy lets go of it
	// just after (it saw both directions end), so wait for that.
	for deadline := time.Now().Add(5 * time.Second); proxy.Live() > 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := proxy.Cut(); n != 1 {
		t.Fatalf("Cut cut %d connections, want 1", n)
	}
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("read %q from a cut connection", line)
	}
	c = dial()
	io.WriteString(c, "two\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); line != "two\n" || err != nil {
		t.Fatalf("echo after a cut: %q, %v", line, err)
	}
	if got := proxy.Accepted(); got != 3 {
		t.Fatalf("Accepted() = %d, want 3", got)
	}
}
