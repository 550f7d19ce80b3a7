package e2e

import (
	"bufio"
	"bytes"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
)

// The reference implementation, made to misbehave (e2e/hostile_dilation_peer.py
// sends raw OPEN, DATA and PING records through its own Manager), floods
// gander's Dilation; gander's peak RSS must stay bounded and the
// connection must still work. GANDER_HOSTILE_SCALE multiplies the floods;
// the numbers measured before and after the bounds used 10, 20 and 5 (3000
// subchannels of 1 MiB, 2M OPENs, 15 s of PINGs, the review's floods).
// At the default scale the subchannel flood fails on unbounded code (360
// MiB); the OPEN and PING floods are measurements more than tests there,
// as the reference sends them too slowly to hurt in a few seconds
// (dilation's TestOpenFloodIsBounded and TestPingFloodKeepsOnePong are
// the tests).

var jsonFloodDone = regexp.MustCompile(`\{"flood_done": \d+.*\}`)

func hostileScale() int {
	if n, err := strconv.Atoi(os.Getenv("GANDER_HOSTILE_SCALE")); err == nil && n > 0 {
		return n
	}
	return 1
}

// procStatus reads a size field (VmHWM, the peak RSS, or VmRSS) of this
// process in bytes: gander's side of the connection is this process, the
// peer a child.
func procStatus(t testing.TB, field string) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// sampleRSS records the highest VmRSS until stop is closed: unlike VmHWM
// it also measures a flood run after other tests in the same process.
func sampleRSS(t testing.TB, stop <-chan struct{}) <-chan int64 {
	peak := make(chan int64, 1)
	go func() {
		highest := int64(0)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			highest = max(highest, procStatus(t, "VmRSS"))
			select {
			case <-tick.C:
			case <-stop:
				peak <- highest
				return
			}
		}
	}()
	return peak
}

// hostileFlood runs the peer with args and fails if gander's peak RSS grew
// by more than maxGrowth meanwhile.
func hostileFlood(t *testing.T, maxGrowth int64, args ...string) {
	mailbox := startMailbox(t)
	w, code := joinGander(t, mailbox.URL, "")
	var c *dilation.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c = dilateGander(t, w, dilation.Config{}) }()
	all := append([]string{"hostile_dilation_peer.py", "--mailbox", mailbox.URL, "--appid", dilationAppID, "--code", code}, args...)
	peer := startProcess(t, ".", venvBin(t, "python"), all...)
	wg.Wait()
	if t.Failed() {
		return
	}
	peer.waitFor(t, jsonDilated, 30*time.Second)
	// Start from what is live: garbage left by earlier tests would let
	// the collector's pacing pass for growth.
	debug.FreeOSMemory()
	before := procStatus(t, "VmRSS")
	stop := make(chan struct{})
	sampled := sampleRSS(t, stop)
	done := peer.waitFor(t, jsonFloodDone, 3*time.Minute)[0]
	echoThrough(t, c, 1<<20, nil) // the connection still works
	close(stop)
	peak := <-sampled
	t.Logf("%s; RSS %d MiB before the flood, %d MiB at most during it; VmHWM %d MiB",
		done, before>>20, peak>>20, procStatus(t, "VmHWM")>>20)
	if peak-before > maxGrowth {
		t.Errorf("RSS grew by %d MiB, over %d MiB", (peak-before)>>20, maxGrowth>>20)
	}
	peer.closeStdin(t)
}

// Subchannels for a subprotocol nobody listens for, 1 MiB - 1 of DATA each.
func TestHostileDilationUnlistenedSubchannels(t *testing.T) {
	hostileFlood(t, 128<<20, "--flood", "unlistened", "--count", strconv.Itoa(300*hostileScale()), "--size", strconv.Itoa(1<<20-1))
}

// OPEN records without data, for a subprotocol nobody listens for.
func TestHostileDilationOpenFlood(t *testing.T) {
	hostileFlood(t, 128<<20, "--flood", "open", "--count", strconv.Itoa(100000*hostileScale()))
}

// PINGs from a peer that reads nothing back.
func TestHostileDilationPingFlood(t *testing.T) {
	hostileFlood(t, 64<<20, "--flood", "ping", "--seconds", strconv.Itoa(3*hostileScale()))
}
