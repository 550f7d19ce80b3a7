package e2e

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
)

// Outages of the path to the transit relay (relay only, the relay behind a
// faultProxy): the connection drops, new ones are refused for a while, then
// the path returns. What is measured is the time from the path's return to
// the first byte echoed on a subchannel that was open before the cut (the
// issue's goal: within a second, plus a round trip, for every outage).

const (
	// probeInterval is how often a byte is written on the probe after the
	// path returns, until one comes back.
	probeInterval = 10 * time.Millisecond
	// recoveryGoal is the goal for the first byte after the path's
	// return (plus a round trip, negligible on loopback). The summary
	// counts the runs over it; only recoveryBound fails a run, since a
	// loaded two-core machine may take longer now and then.
	recoveryGoal = time.Second
	// recoveryBound is how long after the path's return a run waits for
	// the first echo before it fails.
	recoveryBound = 20 * time.Second
	// bulkDrainBound bounds the bulk stream's end: after its half-close,
	// the rest of the echo and the peer's half-close.
	bulkDrainBound = 30 * time.Second
	// bulkAfterRecovery is how long the bulk stream goes on after the
	// probe's first echo.
	bulkAfterRecovery = time.Second
)

var outageLengths = []time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second}

// stream is a connection that echoes what is written to it: an "echo"
// subchannel, or a TCP connection to a forwarded echo service.
type stream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// echoSession is a connection to an echo service that the outage runs cut:
// open opens one more echo stream; brief says how it came back, for the
// run's line (e.g. "generation=3 down=5.2s via=..."); describe says in
// full how the connection is doing, for failure messages; close ends the
// connection, and with it every Write still waiting for it (closing a
// subchannel does not end a Write parked until the connection is back).
type echoSession struct {
	open     func(ctx context.Context) (stream, error)
	brief    func() string
	describe func() string
	close    func()
}

// closeAtCleanup makes session's connection close first at cleanup (the
// cleanups run last registered first), before the streams' cleanups wait
// for their goroutines.
func (session echoSession) closeAtCleanup(t testing.TB) {
	t.Cleanup(session.close)
}

// dilatedSession is an echoSession over c, whose peer serves "echo".
func dilatedSession(c *dilation.Conn) echoSession {
	return echoSession{
		open: func(ctx context.Context) (stream, error) { return c.Open(ctx, "echo") },
		brief: func() string {
			st := c.Status()
			return fmt.Sprintf("generation=%d down=%v via=%q", st.Generation, st.Outage.Round(time.Millisecond), st.Via)
		},
		describe: func() string {
			st := c.Status()
			return fmt.Sprintf("state=%s generation=%d via=%q attempts=%d last-failure=%v since=%s err=%v",
				st.State, st.Generation, st.Via, st.Attempts, st.LastFailure, sinceText(st.Since), st.Err)
		},
		close: func() { c.Close() },
	}
}

func sinceText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Millisecond).String() + " ago"
}

// probe is an echo stream that is written a few bytes at a time: it says
// whether a connection open before a cut still carries data, and when it
// did again.
type probe struct {
	s      stream
	echoes chan []byte   // what came back, in order; closed when reading ends
	done   chan struct{} // closed at cleanup: the reader stops
	// readErr is why reading ended; read it after echoes is closed.
	readErr error
	pending []byte // echoed but not yet expected
}

// newProbe reads s in the background until the test ends, and closes s then.
func newProbe(t testing.TB, s stream) *probe {
	p := &probe{s: s, echoes: make(chan []byte, 256), done: make(chan struct{})}
	go p.read()
	t.Cleanup(func() {
		close(p.done)
		s.Close()
	})
	return p
}

func (p *probe) read() {
	defer close(p.echoes)
	for {
		buf := make([]byte, 4096)
		n, err := p.s.Read(buf)
		if n > 0 {
			select {
			case p.echoes <- buf[:n]:
			case <-p.done:
				return
			}
		}
		if err != nil {
			p.readErr = err
			return
		}
	}
}

// next returns the next bytes echoed, or an error at the deadline or if
// reading ended.
func (p *probe) next(deadline <-chan time.Time) ([]byte, error) {
	if len(p.pending) > 0 {
		b := p.pending
		p.pending = nil
		return b, nil
	}
	select {
	case b, ok := <-p.echoes:
		if !ok {
			return nil, fmt.Errorf("the probe's echo ended: %v", p.readErr)
		}
		return b, nil
	case <-deadline:
		return nil, errors.New("timed out waiting for the probe's echo")
	}
}

// expect reads exactly len(want) echoed bytes and checks they are want.
func (p *probe) expect(want []byte, deadline <-chan time.Time) error {
	var got []byte
	for len(got) < len(want) {
		b, err := p.next(deadline)
		if err != nil {
			return fmt.Errorf("%w (%d of %d bytes back)", err, len(got), len(want))
		}
		got = append(got, b...)
	}
	if len(got) > len(want) {
		p.pending = got[len(want):]
		got = got[:len(want)]
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("the probe echoed %q, want %q", got, want)
	}
	return nil
}

// roundTrip writes msg and waits, up to timeout, for its echo.
func (p *probe) roundTrip(msg string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	written := make(chan error, 1)
	go func() { // ends when the write does, at the latest when cleanup closes s
		_, err := io.WriteString(p.s, msg)
		written <- err
	}()
	if err := p.expect([]byte(msg), deadline.C); err != nil {
		return err
	}
	return <-written
}

// recover writes one byte every probeInterval until the first echo
// arrives, and returns the time from back (when the path returned) to that
// echo. It then checks that every byte it wrote came back, in order. It
// gives up bound after back; its writer then ends once its Write does, at
// the latest when the connection closes.
func (p *probe) recover(back time.Time, bound time.Duration) (time.Duration, error) {
	deadline := time.NewTimer(time.Until(back.Add(bound)))
	defer deadline.Stop()
	var mu sync.Mutex
	var sent []byte
	stop, writerDone := make(chan struct{}), make(chan error, 1)
	go func() { // owned by recover: it stops it, and waits for it unless giving up
		tick := time.NewTicker(probeInterval)
		defer tick.Stop()
		for k := 0; ; k++ {
			b := []byte{byte('a' + k%26)}
			mu.Lock()
			sent = append(sent, b[0])
			mu.Unlock()
			if _, err := p.s.Write(b); err != nil {
				writerDone <- err
				return
			}
			select {
			case <-stop:
				writerDone <- nil
				return
			case <-tick.C:
			}
		}
	}()
	first, err := p.next(deadline.C)
	if err != nil {
		close(stop)
		return 0, err
	}
	firstByte := time.Since(back)
	close(stop)
	select {
	case err := <-writerDone:
		if err != nil {
			return firstByte, fmt.Errorf("writing the probe: %w", err)
		}
	case <-deadline.C:
		return firstByte, errors.New("a write on the probe still waits after its first echo")
	}
	p.pending = first
	mu.Lock()
	want := slices.Clone(sent)
	mu.Unlock()
	return firstByte, p.expect(want, deadline.C)
}

// bulk streams random data through an echo stream and hashes what it sends
// and what comes back.
type bulk struct {
	s            stream
	stop         chan struct{}
	echoed       atomic.Int64
	progress     chan struct{} // closed once echoed reaches bulkFlowing
	sent, got    hash.Hash
	wrote        int64
	writeErr     error
	readErr      error
	writerDone   chan struct{}
	readerDone   chan struct{}
	progressOnce sync.Once
}

// bulkFlowing is how much must have come back before a bulk stream is
// taken to be running.
const bulkFlowing = 1 << 20

// startBulk starts streaming through s until finish. Its cleanup closes s
// and waits for its goroutines: register the connection's closing after it
// (echoSession.closeAtCleanup), so that a Write parked until the
// connection comes back ends too.
func startBulk(t testing.TB, s stream) *bulk {
	b := &bulk{
		s: s, stop: make(chan struct{}), progress: make(chan struct{}),
		sent: sha256.New(), got: sha256.New(),
		writerDone: make(chan struct{}), readerDone: make(chan struct{}),
	}
	go b.write()
	go b.read()
	t.Cleanup(func() { // after finish, or if the test failed before it
		s.Close()
		<-b.writerDone
		<-b.readerDone
	})
	return b
}

func (b *bulk) write() {
	defer close(b.writerDone)
	var seed [32]byte
	cryptorand.Read(seed[:])
	rng := rand.NewChaCha8(seed)
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-b.stop:
			b.writeErr = b.s.CloseWrite()
			return
		default:
		}
		rng.Read(buf)
		b.sent.Write(buf)
		n, err := b.s.Write(buf)
		b.wrote += int64(n)
		if err != nil {
			b.writeErr = err
			return
		}
	}
}

func (b *bulk) read() {
	defer close(b.readerDone)
	buf := make([]byte, 64<<10)
	for {
		n, err := b.s.Read(buf)
		b.got.Write(buf[:n])
		if b.echoed.Add(int64(n)) >= bulkFlowing {
			b.progressOnce.Do(func() { close(b.progress) })
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			b.readErr = err
			return
		}
	}
}

// waitFlowing waits until the echo has started coming back.
func (b *bulk) waitFlowing(timeout time.Duration) error {
	select {
	case <-b.progress:
		return nil
	case <-b.readerDone:
		return fmt.Errorf("the bulk echo ended after %d bytes: %v", b.echoed.Load(), b.readErr)
	case <-time.After(timeout):
		return fmt.Errorf("the bulk echo brought back %d bytes in %v", b.echoed.Load(), timeout)
	}
}

// finish half-closes the stream, waits for the rest of the echo and the
// peer's half-close, and checks that everything sent came back. It returns
// how many bytes made the round trip.
func (b *bulk) finish(timeout time.Duration) (int64, error) {
	close(b.stop)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, done := range []chan struct{}{b.writerDone, b.readerDone} {
		select {
		case <-done:
		case <-deadline.C:
			// b.wrote is the writer's until it is done: not reported.
			return 0, fmt.Errorf("the bulk stream did not end within %v of its half-close: %d bytes echoed",
				timeout, b.echoed.Load())
		}
	}
	if b.writeErr != nil {
		return 0, fmt.Errorf("writing the bulk stream after %d bytes: %w", b.wrote, b.writeErr)
	}
	if b.readErr != nil {
		return 0, fmt.Errorf("reading the bulk echo after %d bytes: %w", b.echoed.Load(), b.readErr)
	}
	if b.echoed.Load() != b.wrote || !bytes.Equal(b.sent.Sum(nil), b.got.Sum(nil)) {
		return 0, fmt.Errorf("sent %d bytes (sha256 %x), %d came back (sha256 %x)",
			b.wrote, b.sent.Sum(nil), b.echoed.Load(), b.got.Sum(nil))
	}
	return b.wrote, nil
}

// recovery is one outage run's result.
type recovery struct {
	pair, load string
	kind       pathLoss
	outage     time.Duration
	firstByte  time.Duration
	recovered  bool
}

// recoveries collects the runs' results for the summary.
type recoveries struct {
	mu   sync.Mutex
	runs []recovery
}

func (r *recoveries) add(rec recovery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, rec)
}

// summary is one line per pair and one overall: how many runs recovered,
// and p50/p99/max of their first-byte times.
func (r *recoveries) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pairs []string
	for _, rec := range r.runs {
		if !slices.Contains(pairs, rec.pair) {
			pairs = append(pairs, rec.pair)
		}
	}
	var sb strings.Builder
	line := func(name string, keep func(recovery) bool) {
		var times []time.Duration
		runs := 0
		for _, rec := range r.runs {
			if !keep(rec) {
				continue
			}
			runs++
			if rec.recovered {
				times = append(times, rec.firstByte)
			}
		}
		overGoal := 0
		for _, d := range times {
			if d > recoveryGoal {
				overGoal++
			}
		}
		fmt.Fprintf(&sb, "recovery summary %-26s runs=%d recovered=%d over-%v=%d", name, runs, len(times), recoveryGoal, overGoal)
		if len(times) > 0 {
			slices.Sort(times)
			fmt.Fprintf(&sb, " p50=%v p99=%v max=%v", percentile(times, 0.50), percentile(times, 0.99), percentile(times, 1))
		}
		sb.WriteString("\n")
	}
	for _, pair := range pairs {
		line("pair="+pair, func(rec recovery) bool { return rec.pair == pair })
	}
	line("all", func(recovery) bool { return true })
	return sb.String()
}

// percentile is the nearest-rank percentile of sorted times.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))].Round(time.Millisecond)
}

// pathLoss is how a run takes the path away: "outage" (faultProxy.Outage,
// refused) or "blackhole" (faultProxy.Blackhole, silent).
type pathLoss string

const (
	lossOutage    pathLoss = "outage"
	lossBlackhole pathLoss = "blackhole"
)

// outageRun is one run: a probe and (for load "bulk") a bulk stream open
// through session, the path through proxy lost for length, then the
// probe's recovery time, the bulk stream's sha256, and the probe again.
func outageRun(t *testing.T, results *recoveries, session echoSession, proxy *faultProxy,
	pair, load string, kind pathLoss, length time.Duration) {
	t.Helper()
	pr := newProbe(t, mustOpen(t, session))
	if err := pr.roundTrip("before the cut", 10*time.Second); err != nil {
		t.Fatalf("the probe before the cut: %v", err)
	}
	var bk *bulk
	if load == "bulk" {
		bk = startBulk(t, mustOpen(t, session))
	}
	session.closeAtCleanup(t)
	if bk != nil {
		if err := bk.waitFlowing(20 * time.Second); err != nil {
			t.Fatal(err)
		}
	}

	var back time.Time
	if kind == lossBlackhole {
		back = proxy.Blackhole(t, length)
	} else {
		back = proxy.Outage(t, length)
	}
	firstByte, err := pr.recover(back, recoveryBound)
	results.add(recovery{pair: pair, load: load, kind: kind, outage: length, firstByte: firstByte, recovered: err == nil})
	if err != nil {
		t.Logf("recovery pair=%s %s=%v load=%s first-byte=none", pair, kind, length, load)
		t.Fatalf("no recovery within %v of the path's return after a %v %s: %v\nconnection: %s",
			recoveryBound, length, kind, err, session.describe())
	}
	t.Logf("recovery pair=%s %s=%v load=%s first-byte=%v %s",
		pair, kind, length, load, firstByte.Round(time.Millisecond), session.brief())

	if bk != nil {
		time.Sleep(bulkAfterRecovery)
		n, err := bk.finish(bulkDrainBound)
		if err != nil {
			t.Fatalf("the bulk stream across the outage: %v\nconnection: %s", err, session.describe())
		}
		t.Logf("bulk stream: %d MiB echoed across the outage, sha256 equal", n>>20)
	}
	if err := pr.roundTrip("after the cut", 10*time.Second); err != nil {
		t.Fatalf("the probe after recovering: %v\nconnection: %s", err, session.describe())
	}
}

// mustOpen opens one more echo stream of session.
func mustOpen(t *testing.T, session echoSession) stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := session.open(ctx)
	if err != nil {
		t.Fatalf("opening an echo stream: %v", err)
	}
	return s
}

// outagePair sets up a dilated connection, relay only through relayHint,
// whose far end serves "echo"; it returns the near end.
type outagePair struct {
	name  string
	setup func(t *testing.T, mailboxURL, relayHint string) *dilation.Conn
}

var outagePairs = []outagePair{
	{"gander-gander", func(t *testing.T, mailboxURL, relayHint string) *dilation.Conn {
		wa, code := joinGander(t, mailboxURL, "")
		wb, _ := joinGander(t, mailboxURL, code)
		var a, b *dilation.Conn
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			a = dilateGander(t, wa, dilation.Config{TransitRelay: relayHint, NoDirect: true, Side: leaderSide})
		}()
		go func() {
			defer wg.Done()
			b = dilateGander(t, wb, dilation.Config{TransitRelay: relayHint, NoDirect: true, Side: followerSide})
		}()
		wg.Wait()
		if a == nil || b == nil {
			t.FailNow() // dilateGander said why
		}
		serveEcho(t, b)
		return a
	}},
	{"gander-leads-python", pythonOutagePair(leaderSide)},
	{"python-leads-gander", pythonOutagePair(followerSide)},
}

func pythonOutagePair(side string) func(t *testing.T, mailboxURL, relayHint string) *dilation.Conn {
	return func(t *testing.T, mailboxURL, relayHint string) *dilation.Conn {
		py := startPythonPeer(t, mailboxURL, "", "--relay", relayHint, "--no-listen")
		w, _ := joinGander(t, mailboxURL, py.code)
		c := dilateGander(t, w, dilation.Config{TransitRelay: relayHint, NoDirect: true, Side: side})
		py.proc.waitFor(t, jsonDilated, 30*time.Second)
		if got := c.Status().Leader; got != (side == leaderSide) {
			t.Fatalf("gander leader = %v, want %v", got, side == leaderSide)
		}
		return c
	}
}

// TestOutage takes the path to the relay away for 0.1, 1, 5 and 30 s, with
// the link idle and with a bulk stream running, between gander peers and
// between gander and magic-wormhole 0.24 in both roles; then a 5 s
// blackhole between gander peers, and two gander processes with forwarded
// connections through a 5 s outage (the measured setup). Every
// stream open before the cut must carry on, and the bulk stream's sha256
// must match. Runs are sequential: timing matters.
func TestOutage(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	results := &recoveries{}
	t.Cleanup(func() { t.Log("\n" + results.summary()) })

	for _, pair := range outagePairs {
		for _, length := range outageLengths {
			for _, load := range []string{"idle", "bulk"} {
				t.Run(fmt.Sprintf("%s/outage=%v/%s", pair.name, length, load), func(t *testing.T) {
					proxy := startProxy(t, relay.Addr)
					c := pair.setup(t, mailbox.URL, "tcp:"+proxy.Addr)
					outageRun(t, results, dilatedSession(c), proxy, pair.name, load, lossOutage, length)
				})
			}
		}
	}

	// A path that goes silent rather than refusing: the relay attempts
	// made meanwhile are accepted and never answered.
	t.Run("gander-gander/blackhole=5s/idle", func(t *testing.T) {
		proxy := startProxy(t, relay.Addr)
		c := outagePairs[0].setup(t, mailbox.URL, "tcp:"+proxy.Addr)
		outageRun(t, results, dilatedSession(c), proxy, outagePairs[0].name, "idle", lossBlackhole, 5*time.Second)
	})

	t.Run("gander-binary/outage=5s/bulk", func(t *testing.T) {
		proxy := startProxy(t, relay.Addr)
		session := ganderProcessSession(t, mailbox.URL, "tcp:"+proxy.Addr)
		outageRun(t, results, session, proxy, "gander-binary", "bulk", lossOutage, 5*time.Second)
	})
}

// ganderProcessSession is the measured setup: two gander
// processes, relay only through relayHint, one offering a local echo
// service and the other listening for it; each stream is a TCP connection
// to that listener.
func ganderProcessSession(t *testing.T, mailboxURL, relayHint string) echoSession {
	echo := rawEcho(t)
	logs := t.TempDir()
	common := []string{"--no-tui", "--no-direct", "--relay", relayHint}
	offererLog, accepterLog := filepath.Join(logs, "offerer.log"), filepath.Join(logs, "accepter.log")
	offerer := startGander(t, mailboxURL, append(common, "--log", offererLog, "--remote", "echo:"+strconv.Itoa(echo))...)
	code := offerer.waitFor(t, ganderCode, 30*time.Second)[1]
	accepter := startGander(t, mailboxURL, append(common, "--log", accepterLog, "--local", "echo", code)...)
	addr := accepter.waitFor(t, ganderListening, 60*time.Second)[2]
	t.Cleanup(func() {
		if t.Failed() {
			for _, log := range []string{offererLog, accepterLog} {
				t.Logf("the end of %s:\n%s", filepath.Base(log), tail(log, 40))
			}
		}
	})
	return echoSession{
		open: func(ctx context.Context) (stream, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return c.(*net.TCPConn), nil
		},
		brief: func() string { return "generation=? (gander processes)" },
		describe: func() string {
			return fmt.Sprintf("gander processes: offerer exited=%v, accepter exited=%v (their logs follow)",
				offerer.exited(), accepter.exited())
		},
		close: func() {}, // closing a TCP connection ends its Writes
	}
}

// rawEcho is a TCP echo service on loopback: it copies every connection
// back, and answers a half-close with its own.
func rawEcho(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// tail is the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// The outage harness on its own, against an echo service: during an
// Outage live connections are cut and dials refused, afterwards dials
// work; a Blackhole cuts live connections too, then accepts new ones and
// passes nothing, and at its end closes them. It needs no venv.
func TestOutageProxy(t *testing.T) {
	proxy := startProxy(t, "127.0.0.1:"+strconv.Itoa(rawEcho(t)))
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", proxy.Addr, 2*time.Second) }
	echoes := func(c net.Conn, msg string, timeout time.Duration) error {
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != msg {
			return fmt.Errorf("echoed %q, want %q", got, msg)
		}
		return nil
	}
	mustDial := func() net.Conn {
		t.Helper()
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := echoes(c, "hello", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		return c
	}

	held := mustDial()
	refused := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // well inside the outage
		_, err := dial()
		refused <- err
	}()
	start := time.Now()
	back := proxy.Outage(t, 300*time.Millisecond)
	if down := back.Sub(start); down < 300*time.Millisecond {
		t.Fatalf("the outage lasted %v", down)
	}
	if err := <-refused; !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a dial during the outage: %v, want connection refused", err)
	}
	if err := echoes(held, "x", 2*time.Second); err == nil {
		t.Fatal("a connection open before the outage still echoes")
	}
	mustDial()

	before := mustDial()
	during := make(chan error, 1)
	go func() { // checks what the blackhole does while it lasts (400 ms)
		time.Sleep(100 * time.Millisecond)
		before.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if b, err := io.ReadAll(before); len(b) > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
			during <- fmt.Errorf("a connection open before the blackhole read %q, %v; want it cut", b, err)
			return
		}
		c, err := dial()
		if err != nil {
			during <- fmt.Errorf("a dial during the blackhole: %v, want it accepted", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, "into the void")
		held := time.Now()
		b, err := io.ReadAll(c)
		switch {
		case len(b) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET):
			during <- fmt.Errorf("a connection accepted during the blackhole read %q, %v; want it closed with nothing", b, err)
		case time.Since(held) < 100*time.Millisecond:
			during <- fmt.Errorf("a connection accepted during the blackhole ended after %v, before the blackhole did", time.Since(held))
		default:
			during <- nil
		}
	}()
	proxy.Blackhole(t, 400*time.Millisecond)
	if err := <-during; err != nil {
		t.Fatal(err)
	}
	mustDial()
}
