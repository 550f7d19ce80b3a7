package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/dilation/dilationtest"
	"github.com/gander-pair/gander/wormhole"
)

// Dilation between gander and magic-wormhole 0.24's own implementation
// (e2e/dilation_peer.py drives its public dilate API), and between two
// gander peers, over the real mailbox server and transit relay.

const (
	dilationAppID = dilationtest.AppID // the Python peers use it too
	leaderSide    = "ffffffffffffffff" // larger than any random side
	followerSide  = "0000000000000000"
)

// joinGander joins the wormhole (allocating a code if code is "") and
// returns once the code is set; connect finishes dilating.
func joinGander(t testing.TB, mailboxURL, code string) (*wormhole.Wormhole, string) {
	t.Helper()
	return dilationtest.Join(t, code, dilationtest.Mailbox(mailboxURL), dilationtest.Timeout(30*time.Second))
}

func dilateGander(t testing.TB, w *wormhole.Wormhole, cfg dilation.Config) *dilation.Conn {
	t.Helper()
	return dilationtest.Dilate(t, w, cfg, dilationtest.Timeout(60*time.Second))
}

// serve runs handle for every subchannel the peer opens for proto, until
// the connection closes.
func serve(t testing.TB, c *dilation.Conn, proto string, handle func(*dilation.Subchannel)) {
	t.Helper()
	dilationtest.Serve(t, c, proto, handle)
}

// serveEcho answers every "echo" subchannel by copying it back.
func serveEcho(t testing.TB, c *dilation.Conn) {
	t.Helper()
	dilationtest.Echo(t, c, "echo")
}

// echoThrough writes size random bytes on a new "echo" subchannel, reads
// the echo, and checks its sha256. It returns the elapsed time. If
// progress is not nil it counts the bytes echoed back so far.
func echoThrough(t *testing.T, c *dilation.Conn, size int, progress *atomic.Int64) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	sc, err := c.Open(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sent := sha256.New()
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		for remaining := size; remaining > 0; {
			n := min(remaining, len(buf))
			rand.Read(buf[:n])
			sent.Write(buf[:n])
			if _, err := sc.Write(buf[:n]); err != nil {
				writeErr <- err
				return
			}
			remaining -= n
		}
		writeErr <- sc.CloseWrite()
	}()
	got := sha256.New()
	var sink io.Writer = got
	if progress != nil {
		sink = countingWriter{got, progress}
	}
	n, err := io.Copy(sink, sc)
	if err != nil {
		t.Fatalf("reading the echo after %d bytes: %v", n, err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if int(n) != size || hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(sent.Sum(nil)) {
		t.Fatalf("echo of %d bytes came back as %d bytes with a different sha256", size, n)
	}
	return time.Since(start)
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.w.Write(p)
}

// pythonPeer is magic-wormhole's Dilation in a child process.
type pythonPeer struct {
	proc *process
	code string
}

var (
	jsonCode     = regexp.MustCompile(`\{"code": "([^"]+)"\}`)
	jsonDilated  = regexp.MustCompile(`\{"dilated": true\}`)
	jsonEchoDone = regexp.MustCompile(`\{"sent": .*\}`)
)

func startPythonPeer(t testing.TB, mailboxURL, code string, args ...string) *pythonPeer {
	t.Helper()
	all := append([]string{"dilation_peer.py", "--mailbox", mailboxURL, "--appid", dilationAppID}, args...)
	if code != "" {
		all = append(all, "--code", code)
	}
	p := startProcess(t, ".", venvBin(t, "python"), all...)
	return &pythonPeer{proc: p, code: p.waitFor(t, jsonCode, 30*time.Second)[1]}
}

type echoReport struct {
	Sent, Received int
	EchoOK         bool `json:"echo_ok"`
	Seconds        float64
}

// echoResult waits for the Python peer's own echo check.
func (p *pythonPeer) echoResult(t *testing.T) echoReport {
	t.Helper()
	var r echoReport
	line := p.proc.waitFor(t, jsonEchoDone, 5*time.Minute)[0]
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("python report %q: %v", line, err)
	}
	return r
}

func TestDilationInteropWithPython(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	const size = 64 << 20
	for _, ganderLeads := range []bool{true, false} {
		for _, relayOnly := range []bool{false, true} {
			for _, ganderOpens := range []bool{true, false} {
				name := fmt.Sprintf("gander leads=%v/relay only=%v/gander opens=%v", ganderLeads, relayOnly, ganderOpens)
				t.Run(name, func(t *testing.T) {
					// The direct cases get no relay: a leader may pick
					// whichever connection finishes first.
					var pyArgs []string
					cfg := dilation.Config{Side: followerSide}
					if ganderLeads {
						cfg.Side = leaderSide
					}
					if relayOnly {
						cfg.NoDirect, cfg.TransitRelay = true, relay.Hint
						pyArgs = append(pyArgs, "--no-listen", "--relay", relay.Hint)
					}
					if !ganderOpens {
						pyArgs = append(pyArgs, "--send", fmt.Sprint(size))
					}
					py := startPythonPeer(t, mailbox.URL, "", pyArgs...)
					w, _ := joinGander(t, mailbox.URL, py.code)
					c := dilateGander(t, w, cfg)
					serveEcho(t, c)
					py.proc.waitFor(t, jsonDilated, 30*time.Second)

					status := c.Status()
					if status.Leader != ganderLeads {
						t.Fatalf("gander leader = %v, want %v", status.Leader, ganderLeads)
					}
					if status.Relayed != relayOnly {
						t.Fatalf("connected via %q, relayed = %v, want %v", status.Via, status.Relayed, relayOnly)
					}
					if ganderOpens {
						elapsed := echoThrough(t, c, size, nil)
						t.Logf("gander echoed 64 MiB through python via %s in %v", status.Via, elapsed.Round(time.Millisecond))
					} else {
						r := py.echoResult(t)
						if !r.EchoOK || r.Received != size {
							t.Fatalf("python's echo through gander failed: %+v", r)
						}
						t.Logf("python echoed 64 MiB through gander via %s in %.2fs", status.Via, r.Seconds)
					}
				})
			}
		}
	}
}

// A fault proxy in front of the transit relay cuts the connection again and
// again during a transfer; both sides reconnect (relay only) and every byte
// arrives once, in order.
func TestDilationSurvivesRepeatedCuts(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	proxy := startProxy(t, relay.Addr)
	proxied := "tcp:" + proxy.Addr
	const size = 256 << 20

	// cutRepeatedly cuts every connection through the proxy each time
	// another sixth of the data has come back, so that each cut is
	// followed by progress on a new connection.
	cutRepeatedly := func(progress *atomic.Int64, done <-chan struct{}) *atomic.Int32 {
		cuts := new(atomic.Int32)
		go func() {
			next := int64(size / 6)
			for {
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if progress.Load() >= next && proxy.Cut() > 0 {
					cuts.Add(1)
					next += size / 6
				}
			}
		}()
		return cuts
	}

	t.Run("gander to gander", func(t *testing.T) {
		cfg := dilation.Config{TransitRelay: proxied, NoDirect: true}
		a, b := dilationtest.Pair(t, cfg, cfg, dilationtest.Mailbox(mailbox.URL), dilationtest.Timeout(60*time.Second))
		serveEcho(t, b)
		done, progress := make(chan struct{}), new(atomic.Int64)
		cuts := cutRepeatedly(progress, done)
		elapsed := echoThrough(t, a, size, progress)
		close(done)
		t.Logf("256 MiB echoed in %v across %d cuts; generation %d", elapsed.Round(time.Millisecond), cuts.Load(), a.Status().Generation)
		if cuts.Load() < 5 {
			t.Fatalf("only %d cuts happened during the transfer", cuts.Load())
		}
	})
	for _, side := range []string{leaderSide, followerSide} {
		t.Run("gander to python, gander leads="+fmt.Sprint(side == leaderSide), func(t *testing.T) {
			py := startPythonPeer(t, mailbox.URL, "", "--relay", proxied, "--no-listen")
			w, _ := joinGander(t, mailbox.URL, py.code)
			c := dilateGander(t, w, dilation.Config{TransitRelay: proxied, NoDirect: true, Side: side})
			py.proc.waitFor(t, jsonDilated, 30*time.Second)
			done, progress := make(chan struct{}), new(atomic.Int64)
			cuts := cutRepeatedly(progress, done)
			elapsed := echoThrough(t, c, size, progress)
			close(done)
			t.Logf("256 MiB echoed through python in %v across %d cuts; generation %d",
				elapsed.Round(time.Millisecond), cuts.Load(), c.Status().Generation)
			if cuts.Load() < 5 {
				t.Fatalf("only %d cuts happened during the transfer", cuts.Load())
			}
		})
	}
}

// A thousand subchannels at once, each echoing 64 KiB, gander to gander.
func TestThousandSubchannels(t *testing.T) {
	mailbox := startMailbox(t)
	a, b := dilationtest.Pair(t, dilation.Config{}, dilation.Config{}, dilationtest.Mailbox(mailbox.URL), dilationtest.Timeout(60*time.Second))
	serveEcho(t, b)

	start := time.Now()
	var wg sync.WaitGroup
	var failures sync.Map
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoOnce(a, 64<<10); err != nil {
				failures.Store(i, err)
			}
		}()
	}
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("subchannel %v: %v", k, v)
		return true
	})
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	t.Logf("1000 subchannels x 64 KiB echoed in %v; peak RSS of the test process (both peers) %d MiB",
		time.Since(start).Round(time.Millisecond), usage.Maxrss/1024)
}

// echoOnce is echoThrough for many goroutines: it returns an error.
func echoOnce(c *dilation.Conn, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc, err := c.Open(ctx, "echo")
	if err != nil {
		return err
	}
	defer sc.Close()
	data := make([]byte, size)
	rand.Read(data)
	go func() {
		sc.Write(data)
		sc.CloseWrite()
	}()
	got, err := io.ReadAll(sc)
	if err != nil {
		return err
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", size, len(got))
	}
	return nil
}
