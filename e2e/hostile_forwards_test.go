package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A hostile fowl peer (e2e/hostile_forwards_peer.py: magic-wormhole's
// Dilation and fowl's own command protocol, made to misbehave) against a
// real gander process: what it can make gander spend is bounded, and it is
// told why when it reaches a bound.

// hostileReport is the peer's {"done": ...} line.
type hostileReport struct {
	Done      string
	Listening int
	Reasons   map[string]int
	Replies   int
	Closed    int
	Seconds   float64
}

var hostileDone = regexp.MustCompile(`(?m)^(\{"done".*\})$`)

// startHostilePeer joins gander's code and misbehaves as args say.
func startHostilePeer(t *testing.T, mailboxURL, code string, args ...string) *process {
	t.Helper()
	all := append([]string{"hostile_forwards_peer.py", "--mailbox", mailboxURL, "--code", code}, args...)
	return startProcess(t, ".", venvBin(t, "python"), all...)
}

func hostileResult(t *testing.T, peer *process, timeout time.Duration) hostileReport {
	t.Helper()
	line := peer.waitFor(t, hostileDone, timeout)[1]
	var r hostileReport
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return r
}

// Finding 4 and 5: a peer asking again and again for the same name gets one
// listener, on a port it did not choose, and a reason for each repeat; and
// it gets at most 64 listeners in all.
func TestHostilePeerListenerFlood(t *testing.T) {
	mailbox := startMailbox(t)

	t.Run("the same name", func(t *testing.T) {
		g := startGander(t, mailbox.URL, "--no-tui", "--local", "web")
		code := g.waitFor(t, ganderCode, 30*time.Second)[1]
		peer := startHostilePeer(t, mailbox.URL, code, "--mode", "listen-flood", "--count", "100", "--port", "22")
		r := hostileResult(t, peer, 60*time.Second)
		if r.Listening != 1 || r.Reasons["Already listening for web"] != 99 {
			t.Fatalf("100 requests for web: %+v, want one listener and 99 refusals", r)
		}
		addrs := ganderListening.FindAllStringSubmatch(g.stdoutText(), -1)
		if len(addrs) != 1 || strings.HasSuffix(addrs[0][2], ":22") {
			t.Fatalf("gander listens on %v: want one listener, on a port of its own choosing", addrs)
		}
	})

	t.Run("distinct names", func(t *testing.T) {
		g := startGander(t, mailbox.URL, "--no-tui", "--allow-listen", "dev-*")
		code := g.waitFor(t, ganderCode, 30*time.Second)[1]
		peer := startHostilePeer(t, mailbox.URL, code, "--mode", "listen-flood", "--count", "100", "--name", "dev", "--distinct", "--port", "80")
		r := hostileResult(t, peer, 60*time.Second)
		if r.Listening != 64 || r.Reasons["Too many listeners for the peer (at most 64)"] != 36 {
			t.Fatalf("100 requests for distinct names: %+v, want 64 listeners and 36 refusals", r)
		}
		if strings.Contains(g.stdoutText(), ":80\n") {
			t.Fatalf("gander listened on the peer's privileged port:\n%s", g.stdoutText())
		}
	})
}

// Finding 6: subchannels that never send their request are bounded; those
// beyond the bound are told why at once.
func TestHostilePeerSilentSubchannels(t *testing.T) {
	mailbox := startMailbox(t)
	g := startGander(t, mailbox.URL, "--no-tui", "--local", "web")
	code := g.waitFor(t, ganderCode, 30*time.Second)[1]
	peer := startHostilePeer(t, mailbox.URL, code, "--mode", "silent", "--count", "300", "--settle", "2")
	r := hostileResult(t, peer, 60*time.Second)
	const want = "Too many subchannels waiting for their first message (at most 128)"
	if r.Reasons[want] != 300-128 || r.Replies != 300-128 {
		t.Fatalf("300 silent subchannels: %+v, want %d refused with %q", r, 300-128, want)
	}
	g.waitFor(t, regexp.MustCompile(regexp.QuoteMeta(want)), 10*time.Second)
}

// Finding 1: 60 frames of 11 bytes whose msgpack claims ~4 GB cost gander
// nothing to speak of (before, they took it from 0.5 to 10 GB).
func TestHostilePeerLengthBomb(t *testing.T) {
	mailbox := startMailbox(t)
	g := startGander(t, mailbox.URL, "--no-tui", "--local", "web")
	code := g.waitFor(t, ganderCode, 30*time.Second)[1]
	stop := killAbove(t, g, 1<<30)
	peer := startHostilePeer(t, mailbox.URL, code, "--mode", "bomb", "--count", "60", "--interval", "0.1", "--settle", "1")
	hostileResult(t, peer, 60*time.Second)
	if killed := stop(); killed {
		t.Fatal("gander went above 1 GiB and was killed")
	}
	if peak := peakRSS(t, g); peak > 200<<20 {
		t.Fatalf("gander peaked at %d MiB after 60 length bombs", peak>>20)
	}
}

// killAbove kills p should its resident set grow beyond limit bytes, so
// that a test of a memory bomb cannot take the machine with it. stop ends
// the watch and reports whether p was killed.
func killAbove(t testing.TB, p *process, limit int64) (stop func() (killed bool)) {
	done, result := make(chan struct{}), make(chan bool, 1)
	status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	rss := regexp.MustCompile(`VmRSS:\s+(\d+) kB`)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- false
				return
			case <-p.done:
				result <- false
				return
			case <-tick.C:
			}
			text, err := os.ReadFile(status)
			if m := rss.FindSubmatch(text); err == nil && m != nil {
				if kb, _ := strconv.ParseInt(string(m[1]), 10, 64); kb<<10 > limit {
					syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
					result <- true
					return
				}
			}
		}
	}()
	var once sync.Once
	var killed bool
	stop = func() bool {
		once.Do(func() { close(done); killed = <-result })
		return killed
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestHostilePeerRSS measures gander's peak RSS under each hostile peer at
// the scale of the report, for the record (GANDER_MEASURE_RSS=1;
// a gander above 2 GiB is killed and reported as such):
//
//	GANDER_MEASURE_RSS=1 ./e2e/test.sh -run TestHostilePeerRSS -v
func TestHostilePeerRSS(t *testing.T) {
	if os.Getenv("GANDER_MEASURE_RSS") == "" {
		t.Skip("a measurement: set GANDER_MEASURE_RSS=1")
	}
	mailbox := startMailbox(t)
	for _, tt := range []struct {
		name  string
		flags []string
		peer  []string
	}{
		{"60 length bombs", []string{"--local", "web"}, []string{"--mode", "bomb", "--count", "60", "--interval", "0.2"}},
		{"2000 listen requests for web", []string{"--local", "web"}, []string{"--mode", "listen-flood", "--count", "2000", "--window", "100"}},
		{"2000 listen requests for dev-N", []string{"--allow-listen", "dev-*"}, []string{"--mode", "listen-flood", "--count", "2000", "--name", "dev", "--distinct", "--window", "100"}},
		{"20000 silent fowl subchannels", []string{"--local", "web"}, []string{"--mode", "silent", "--count", "20000", "--settle", "2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := startGander(t, mailbox.URL, append([]string{"--no-tui"}, tt.flags...)...)
			code := g.waitFor(t, ganderCode, 30*time.Second)[1]
			stop := killAbove(t, g, 2<<30)
			start := time.Now()
			peer := startHostilePeer(t, mailbox.URL, code, tt.peer...)
			r, err := peer.match(hostileDone, 5*time.Minute)
			killed := stop()
			if killed {
				t.Logf("%s: gander killed above 2 GiB after %v", tt.name, time.Since(start).Round(time.Second))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.cmd.Process.Pid))
			t.Logf("%s: gander VmHWM %d MiB, %d fds open, after %v; the peer saw %s",
				tt.name, peakRSS(t, g)>>20, len(fds), time.Since(start).Round(time.Second), r[1])
		})
	}
}
