package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/transit"
)

// magic-wormhole 0.24's Dilation, made to misbehave
// (e2e/hostile_reconnect_peer.py), floods gander through the mailbox with
// the L1 messages that start a new generation: "reconnect", "reconnecting"
// and "connection-hints" with many hints each, thousands of them, as fast
// as the mailbox takes them. Gander leads in one run (the peer first drops
// its connection and ignores gander's "reconnect" until the flood is sent,
// so that gander's generations dial the flood's hints) and follows in the
// other (every "reconnect" asks it to abandon its connection or the
// generation under way). The flood's hints point at a listener here that
// counts gander's connections and holds them unanswered. Its goroutines, file descriptors (sockets: listeners and
// connection attempts), RSS and CPU must stay bounded, and the connection
// must work afterwards. Gander runs in this process: the samples are this
// process's.

// resources is what gander (this process) holds at one moment.
type resources struct {
	goroutines, fds, sockets int
	rss                      int64
}

func sampleResources(t testing.TB) resources {
	r := resources{goroutines: runtime.NumGoroutine(), rss: procStatus(t, "VmRSS")}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	r.fds = len(entries)
	for _, e := range entries {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(link, "socket:") {
			r.sockets++
		}
	}
	return r
}

func (r resources) String() string {
	return fmt.Sprintf("%d goroutines, %d fds (%d sockets), RSS %d MiB", r.goroutines, r.fds, r.sockets, r.rss>>20)
}

// samplePeaks records the highest of each resource until stop is closed.
func samplePeaks(t testing.TB, stop <-chan struct{}) <-chan resources {
	peaks := make(chan resources, 1)
	go func() {
		var peak resources
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			r := sampleResources(t)
			peak.goroutines = max(peak.goroutines, r.goroutines)
			peak.fds = max(peak.fds, r.fds)
			peak.sockets = max(peak.sockets, r.sockets)
			peak.rss = max(peak.rss, r.rss)
			select {
			case <-tick.C:
			case <-stop:
				peaks <- peak
				return
			}
		}
	}()
	return peaks
}

// connectionCounter accepts the connections gander makes to the peer's
// hints, and holds them (a path that answers nothing) until gander gives
// up on them: it counts them all and the most open at once.
type connectionCounter struct {
	port        int
	mu          sync.Mutex
	total, open int
	peak        int
}

func countConnections(t testing.TB) *connectionCounter {
	ln, err := net.Listen("tcp", ":0") // every loopback address, 127.0.0.0/8
	if err != nil {
		t.Fatal(err)
	}
	cc := &connectionCounter{port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			cc.mu.Lock()
			cc.total++
			cc.open++
			cc.peak = max(cc.peak, cc.open)
			cc.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, conn) // until gander closes it
				conn.Close()
				cc.mu.Lock()
				cc.open--
				cc.mu.Unlock()
			}()
		}
	}()
	return cc
}

func (cc *connectionCounter) counts() (total, peak int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.total, cc.peak
}

// settle waits until c's generation stops changing (the mailbox may still
// be delivering the flood after the peer sent it), up to a minute.
func settle(t *testing.T, c *dilation.Conn) {
	t.Helper()
	last, still := c.Status().Generation, 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		if g := c.Status().Generation; g != last {
			last, still = g, 0
			continue
		}
		if still++; still == 6 {
			return
		}
	}
	t.Fatalf("gander still starts new generations a minute after the flood (generation %d)", last)
}

func TestHostileReconnectFlood(t *testing.T) {
	rounds := 1000 * hostileScale()
	for _, tc := range []struct {
		name string
		side string
		peer []string
	}{
		{"gander-leads", leaderSide, []string{"--drop"}},
		{"gander-follows", followerSide, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mailbox := startMailbox(t)
			relay := startRelay(t)
			hints := countConnections(t)
			w, code := joinGander(t, mailbox.URL, "")
			var c *dilation.Conn
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				c = dilateGander(t, w, dilation.Config{Side: tc.side, TransitRelay: relay.Hint})
			}()
			args := append([]string{"hostile_reconnect_peer.py", "--mailbox", mailbox.URL, "--appid", dilationAppID,
				"--code", code, "--relay", relay.Hint, "--count", strconv.Itoa(rounds), "--hints", "100", "--hint-port", strconv.Itoa(hints.port)}, tc.peer...)
			peer := startProcess(t, ".", venvBin(t, "python"), args...)
			wg.Wait()
			if c == nil {
				t.FailNow() // dilateGander said why
			}
			peer.waitFor(t, jsonDilated, 30*time.Second)
			if got := c.Status().Leader; got != (tc.side == leaderSide) {
				t.Fatalf("gander leader = %v, want %v", got, tc.side == leaderSide)
			}
			debug.FreeOSMemory()
			before := sampleResources(t)
			generation := c.Status().Generation
			cpu, start := cpuTime(t, os.Getpid()), time.Now()
			stop := make(chan struct{})
			peaks := samplePeaks(t, stop)
			done := peer.waitFor(t, jsonFloodDone, 3*time.Minute)[0]
			// What the mailbox still holds reaches gander after the peer
			// sent it: the flood is over once gander has settled.
			settle(t, c)
			echoThrough(t, c, 1<<20, nil) // still usable
			close(stop)
			peak := <-peaks
			cpuUsed, elapsed := cpuTime(t, os.Getpid())-cpu, time.Since(start)
			after := sampleResources(t)
			dialled, concurrent := hints.counts()
			t.Logf("%s; generations %d -> %d; connections to the peer's hints: %d, at most %d at once; "+
				"before: %s; peak: %s; after: %s; CPU %v in %v",
				done, generation, c.Status().Generation, dialled, concurrent, before, peak, after,
				cpuUsed.Round(time.Millisecond), elapsed.Round(time.Millisecond))

			// dilation's minGenerationInterval: one generation a second
			// (the peer's reconnects count once per second, whatever their
			// number), each dialling at most transit.MaxPeerHints hints.
			generations := c.Status().Generation - generation
			if most := 2 + int(elapsed/time.Second); generations > most {
				t.Errorf("the flood made gander start %d generations in %v, over %d", generations, elapsed.Round(time.Millisecond), most)
			}
			// At once: a stopped generation's connections close while
			// the next one dials, so the listener may see two overlap.
			if dialled > transit.MaxPeerHints*(generations+1) || concurrent > 2*transit.MaxPeerHints {
				t.Errorf("gander made %d connections to the peer's hints, %d at once, in %d generations: over %d a generation",
					dialled, concurrent, generations, transit.MaxPeerHints)
			}
			if grew := peak.goroutines - before.goroutines; grew > 300 {
				t.Errorf("goroutines grew by %d during the flood, over 300", grew)
			}
			if grew := peak.sockets - before.sockets; grew > 100 {
				t.Errorf("sockets (listeners and connection attempts) grew by %d during the flood, over 100", grew)
			}
			if grew := peak.rss - before.rss; grew > 64<<20 {
				t.Errorf("RSS grew by %d MiB during the flood, over 64 MiB", grew>>20)
			}
			if cpuUsed > elapsed {
				t.Errorf("gander used %v of CPU in %v: more than one core", cpuUsed, elapsed)
			}
			peer.closeStdin(t)
		})
	}
}
