package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/dilation/dilationtest"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/session"
)

// Hostile file senders against a real gander process (issue 11, findings
// 6b, 7 and 10): a Go peer built on gander's own wormhole and dilation
// packages, introducing itself as gander, that speaks the gander-files
// subprotocol wrongly on purpose; and two real ganders for the limits.
//
// GANDER_E2E_BIN runs these against another gander binary (the one
// before the fix, to measure it): go build -o /tmp/gander-before from
// commit 93ba4e9, then GANDER_E2E_BIN=/tmp/gander-before ./e2e/test.sh
// -run TestHostileOfferFlood.

// Upper bounds a flooded receiver must stay within (the fix admits 4
// running and 16 waiting offers and refuses the rest).
const (
	floodOffers        = 3000
	floodOpenTime      = 20 * time.Second // open as many as fit in this
	floodMaxPartials   = 4
	floodMaxFDs        = 200
	floodMaxGoroutines = 2000
)

// hostileBin is the gander under test: GANDER_E2E_BIN, or the one built
// from this tree.
func hostileBin(t *testing.T) string {
	if bin := os.Getenv("GANDER_E2E_BIN"); bin != "" {
		return bin
	}
	return ganderBin(t)
}

func startHostileTarget(t *testing.T, mailboxURL string, args ...string) *process {
	t.Helper()
	return startProcess(t, scratch, hostileBin(t), append([]string{"--mailbox", mailboxURL, "--relay", "tcp:127.0.0.1:1"}, args...)...)
}

// fakeGander joins code as a gander peer (app id and versions of gander,
// a forwarder so that the session comes up) and returns the dilated
// connection.
func fakeGander(t *testing.T, mailboxURL, code string) *dilation.Conn {
	t.Helper()
	opts := []dilationtest.Option{dilationtest.Mailbox(mailboxURL), dilationtest.App(forwards.AppID, session.AppVersions()),
		dilationtest.Timeout(60 * time.Second)}
	w, _ := dilationtest.Join(t, code, opts...)
	conn := dilationtest.Dilate(t, w, dilation.Config{}, opts...)
	fw, err := forwards.Start(conn, forwards.Config{Policy: forwards.NewPolicy(nil), PeerIsGander: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	return conn
}

// offerFrame is a gander-files OFFER of one file (session/transfer's
// PROTOCOL.md), encoded here so that the test does not trust the code
// under test.
func offerFrame(name string, size int64) []byte {
	str := func(b []byte, s string) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	body := []byte{1} // a file
	body = binary.BigEndian.AppendUint64(body, uint64(size))
	body = binary.BigEndian.AppendUint64(body, 1) // files
	body = binary.BigEndian.AppendUint64(body, 0) // dirs
	body = str(body, "sha256")
	body = str(body, name)
	return append(binary.BigEndian.AppendUint32([]byte{1}, uint32(len(body))), body...)
}

func dataFrame(data []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{5}, uint32(len(data))), data...)
}

// firstAnswer reads the receiver's first frame: its type and, for REFUSE
// or CANCEL, the reason; "closed" if the channel closed first.
func firstAnswer(r io.Reader) string {
	br := bufio.NewReader(r)
	var h [5]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return "closed"
	}
	body := make([]byte, min(binary.BigEndian.Uint32(h[1:]), 8192))
	io.ReadFull(br, body)
	switch h[0] {
	case 2:
		return "accept"
	case 3, 8:
		if len(body) >= 2 {
			return fmt.Sprintf("%d:%s", h[0], body[2:])
		}
	}
	return fmt.Sprintf("type %d", h[0])
}

// procStats are a process's counters from /proc.
type procStats struct {
	peakRSS, rss int64 // bytes
	fds, threads int
}

func readProcStats(t *testing.T, pid int) procStats {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) int64 {
		m := regexp.MustCompile(name + `:\s+(\d+)`).FindSubmatch(status)
		if m == nil {
			return 0
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return procStats{peakRSS: field("VmHWM") << 10, rss: field("VmRSS") << 10, fds: len(fds), threads: int(field("Threads"))}
}

// goroutines makes p dump its goroutines (SIGQUIT, GOTRACEBACK=all) and
// counts them; p exits.
func goroutines(t *testing.T, p *process) int {
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGQUIT)
	p.wait(t, 30*time.Second)
	return len(regexp.MustCompile(`(?m)^goroutine \d+ .*\[`).FindAllString(p.stderrText(), -1))
}

func partials(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".gander-partial-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestHostileOfferFlood: a peer opens thousands of file subchannels, each
// with an offer that is never followed by data. gander with
// --accept-files holds at most 4 of them open (4 partial files), keeps 16
// waiting, refuses the rest with a reason the peer reads, says so on its
// output, and its memory, files and goroutines stay bounded (finding 6b).
func TestHostileOfferFlood(t *testing.T) {
	t.Setenv("GOTRACEBACK", "all")
	mailbox := startMailbox(t)
	saveDir := t.TempDir()
	g := startHostileTarget(t, mailbox.URL, "--no-tui", "--accept-files", "--save-dir", saveDir)
	code := g.waitFor(t, ganderCode, 30*time.Second)[1]
	peer := fakeGander(t, mailbox.URL, code)
	g.waitFor(t, regexp.MustCompile(`Peer connected`), 30*time.Second)
	base := readProcStats(t, g.cmd.Process.Pid)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers = map[string]int{}
		opened  atomic.Int64
	)
	ctx, cancel := context.WithTimeout(context.Background(), floodOpenTime)
	defer cancel()
	started := time.Now()
	for i := range floodOffers {
		sc, err := peer.Open(ctx, "gander-files")
		if err != nil {
			break
		}
		if _, err := sc.Write(offerFrame(fmt.Sprintf("stall-%04d.bin", i), 1<<20)); err != nil {
			sc.Close()
			break
		}
		opened.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			answer := make(chan string, 1)
			go func() { answer <- firstAnswer(sc) }()
			var a string
			select {
			case a = <-answer:
			case <-time.After(3 * time.Second): // the 16 waiting get none
				a = "no answer"
			}
			mu.Lock()
			answers[a]++
			mu.Unlock()
			// Never send the data: hold the channel open until the test ends.
		}()
		if ctx.Err() != nil {
			break
		}
	}
	openTime := time.Since(started)
	wg.Wait()
	time.Sleep(time.Second) // let gander settle
	st := readProcStats(t, g.cmd.Process.Pid)
	held := partials(t, saveDir)
	out := g.stdoutText()
	n := goroutines(t, g)

	line := fmt.Sprintf("%d stalled offers opened in %v: gander peak RSS %d MiB (%d MiB before the flood), RSS %d MiB, %d fds (%d before), %d threads, %d goroutines, %d partial files; answers %v",
		opened.Load(), openTime.Round(time.Millisecond), st.peakRSS>>20, base.peakRSS>>20, st.rss>>20, st.fds, base.fds, st.threads, n, len(held), answers)
	t.Log(line)
	fmt.Println(line)

	if len(held) > floodMaxPartials {
		t.Errorf("%d partial files held open, want at most %d", len(held), floodMaxPartials)
	}
	if st.fds > floodMaxFDs {
		t.Errorf("%d fds open, want at most %d", st.fds, floodMaxFDs)
	}
	if n > floodMaxGoroutines {
		t.Errorf("%d goroutines, want at most %d", n, floodMaxGoroutines)
	}
	busy := 0
	for a, k := range answers {
		if strings.Contains(a, "too many transfers at once") {
			busy += k
		}
	}
	if want := int(opened.Load()) - 20; busy < want*9/10 {
		t.Errorf("%d offers refused as too many, want (nearly) all the %d beyond the 20 admitted", busy, want)
	}
	if !regexp.MustCompile(`Refused \d+ offers of the peer unread: too many transfers at once`).MatchString(out) {
		t.Errorf("the refusals are not reported:\n%s", out)
	}
	if !strings.Contains(out, "Receiving stall-") {
		t.Errorf("the accepted offers are not reported:\n%s", out)
	}
}

// TestFileLimitsBetweenGanders: a receiver with --max-file-size and
// --max-session-bytes takes what fits and refuses the rest; the sender is
// told why (finding 7).
func TestFileLimitsBetweenGanders(t *testing.T) {
	mailbox := startMailbox(t)
	src, saveDir := t.TempDir(), t.TempDir()
	sizes := map[string]int{"big.bin": 2 << 20, "a.bin": 1 << 20, "b.bin": 1 << 20, "c.bin": 1 << 20}
	var sends []string
	for name, size := range sizes {
		os.WriteFile(filepath.Join(src, name), make([]byte, size), 0o644)
		sends = append(sends, "--send", filepath.Join(src, name))
	}
	receiver := startHostileTarget(t, mailbox.URL, "--no-tui", "--accept-files", "--save-dir", saveDir,
		"--max-file-size", "1M", "--max-session-bytes", "2560K")
	code := receiver.waitFor(t, ganderCode, 30*time.Second)[1]
	sender := startHostileTarget(t, mailbox.URL, append(append([]string{"--no-tui"}, sends...), code)...)
	finished := regexp.MustCompile(`(?m)^(Sent |Transfer of ).*$`)
	deadline := time.Now().Add(60 * time.Second)
	for len(finished.FindAllString(sender.stdoutText(), -1)) < len(sizes) {
		if sender.exited() || time.Now().After(deadline) {
			t.Fatalf("not all transfers finished:\n%s\nreceiver:\n%s", sender.output(), receiver.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := sender.stdoutText()
	if !strings.Contains(out, "Transfer of big.bin failed: transfer: refused by peer: too large: 2.0 MiB, the limit is 1.0 MiB") {
		t.Errorf("big.bin was not refused as too large:\n%s", out)
	}
	if k := strings.Count(out, "refused by peer: over this session's limit: 1.0 MiB offered, 512 KiB of 2.5 MiB left"); k != 1 {
		t.Errorf("%d offers refused over the session's limit, want 1:\n%s", k, out)
	}
	if k := strings.Count(out, "Sent "); k != 2 {
		t.Errorf("%d sent, want 2:\n%s", k, out)
	}
	if !strings.Contains(receiver.stdoutText(), "(up to 1.0 MiB an offer, ") {
		t.Errorf("the receiver does not show its limits:\n%s", receiver.stdoutText())
	}
	entries, _ := os.ReadDir(saveDir)
	if len(entries) != 2 {
		t.Errorf("saved %v, want two files", entries)
	}
}

// TestKilledReceiverLeavesNoPartials: a gander killed (SIGKILL) in the
// middle of receiving leaves its partial file; the next gander saving
// into that directory removes it and says so (finding 10).
func TestKilledReceiverLeavesNoPartials(t *testing.T) {
	mailbox := startMailbox(t)
	saveDir := t.TempDir()
	first := startHostileTarget(t, mailbox.URL, "--no-tui", "--accept-files", "--save-dir", saveDir)
	code := first.waitFor(t, ganderCode, 30*time.Second)[1]
	peer := fakeGander(t, mailbox.URL, code)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, err := peer.Open(ctx, "gander-files")
	if err != nil {
		t.Fatal(err)
	}
	sc.Write(offerFrame("half.bin", 1<<20))
	if a := firstAnswer(sc); a != "accept" {
		t.Fatalf("the offer got %q, want an accept", a)
	}
	sc.Write(dataFrame(make([]byte, 1000)))
	for deadline := time.Now().Add(10 * time.Second); len(partials(t, saveDir)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no partial file appeared")
		}
	}
	stale := partials(t, saveDir)
	syscall.Kill(first.cmd.Process.Pid, syscall.SIGKILL)
	first.wait(t, 10*time.Second)

	second := startHostileTarget(t, mailbox.URL, "--no-tui", "--accept-files", "--save-dir", saveDir)
	code = second.waitFor(t, ganderCode, 30*time.Second)[1]
	src := filepath.Join(t.TempDir(), "whole.bin")
	os.WriteFile(src, []byte("whole"), 0o644)
	startHostileTarget(t, mailbox.URL, "--no-tui", "--send", src, code)
	second.waitFor(t, regexp.MustCompile(`Received whole.bin`), 60*time.Second)
	if !strings.Contains(second.stdoutText(), "Removed 1 partial files left in "+saveDir+" by an earlier gander: "+stale[0]) {
		t.Errorf("the stale partial is not reported:\n%s", second.stdoutText())
	}
	if left := partials(t, saveDir); len(left) != 0 {
		t.Errorf("partial files left: %v", left)
	}
}

// TestJSONOutputClosed: gander --json whose stdout is closed by the
// program reading it ends the session and exits 1 saying why, instead of
// dying of SIGPIPE or running on unheard (finding 10).
func TestJSONOutputClosed(t *testing.T) {
	mailbox := startMailbox(t)
	cmd := exec.Command(hostileBin(t), "--json", "--mailbox", mailbox.URL, "--relay", "tcp:127.0.0.1:1")
	cmd.Dir = scratch
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, `"kind": "welcome"`) {
		t.Fatalf("first line %q, %v", line, err)
	}
	stdout.Close() // the controller goes away
	io.WriteString(stdin, `{"kind": "allocate-code"}`+"\n")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, for the failure message
		<-exited
		t.Fatalf("gander still runs after its output was closed:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "writing events failed") {
		t.Fatalf("gander ended with %v (stderr %q), want exit status 1 and the write error", err, stderr.String())
	}
}
