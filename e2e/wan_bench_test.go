package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkWAN measures forwarding as a person pairing over a real network
// sees it: both peers reach each other through a delay line (toxiproxy on
// loopback) at 0, 4 and 50 ms of extra round-trip time, over the relay
// path (gander --no-direct through the e2e transit relay, the delay line
// in front of the relay), against `ssh -L` through the same delay line.
// Per route it measures the setup latency of a new forwarded connection,
// the throughput of one stream, and a 1-byte echo every 20 ms through one
// forward: idle, beside a bulk stream on the same forward, beside one on
// another forward, and beside a local client on another forward that has
// stopped reading. gander also runs through a relay patched to set
// TCP_NODELAY (see startRelayNoDelay), which tells the relay's Nagle
// waits apart from gander's own. It prints one table and the goals of
// issue 13 next to the measured values, from one run:
//
//	./e2e/test.sh -run '^$' -bench WAN -benchtime 1x
//
// fowl is not a route: 26.8 can neither be told a transit relay nor be
// kept off its direct (loopback) hints, so it cannot be put behind the
// delay line. gander↔gander direct is the two peers on loopback, no relay
// and no delay line (extra RTT 0 only): the floor the others are read
// against.
//
// A whole run takes several minutes; GANDER_WAN_RTTS (say "50ms" or
// "0s,50ms") and GANDER_WAN_ROUTES (a regular expression matched against
// the route's name, say "relay with|ssh") pick a part of the table;
// GANDER_WAN_BIN runs another gander binary (an older build, to compare);
// GANDER_WAN_LOGS is a directory for the gander processes' debug logs.
func BenchmarkWAN(b *testing.B) {
	mailbox := startMailbox(b) // skips outside ./e2e/test.sh
	relay := startRelay(b)
	relayNoDelay := startRelayNoDelay(b)
	delay := startToxiproxy(b)
	daemon := startWANDaemon(b)

	type route struct {
		name   string
		setup  func(b *testing.B, rtt time.Duration) (echo, other string)
		direct bool // no delay line: extra RTT 0 only
	}
	routes := []route{
		{name: "gander↔gander direct", direct: true, setup: func(b *testing.B, rtt time.Duration) (string, string) {
			return ganderWANForwards(b, mailbox.URL, "", daemon)
		}},
		{name: "gander↔gander", setup: func(b *testing.B, rtt time.Duration) (string, string) {
			// Only what comes back from the relay is delayed: peer to
			// peer, each way crosses the delay line once (one peer's
			// upload, the other's download), so each way takes rtt/2.
			hint := "tcp:" + delay.delayLine(b, uniqueName("relay", rtt), relay.Addr, 0, rtt/2)
			return ganderWANForwards(b, mailbox.URL, hint, daemon)
		}},
		{name: "gander↔gander, relay with TCP_NODELAY", setup: func(b *testing.B, rtt time.Duration) (string, string) {
			hint := "tcp:" + delay.delayLine(b, uniqueName("relay-nodelay", rtt), relayNoDelay.Addr, 0, rtt/2)
			return ganderWANForwards(b, mailbox.URL, hint, daemon)
		}},
		{name: "ssh -L", setup: func(b *testing.B, rtt time.Duration) (string, string) {
			addrs := sshForwards(b, daemon, 2, func(sshd string) string {
				return delay.delayLine(b, uniqueName("sshd", rtt), sshd, rtt/2, rtt/2)
			})
			return addrs[0], addrs[1]
		}},
	}
	rtts := wanRTTs(b, []time.Duration{0, 4 * time.Millisecond, 50 * time.Millisecond})
	routes = slices.DeleteFunc(routes, func(r route) bool { return !wanRoutePicked(b, r.name) })

	results := map[string]map[time.Duration]*wanResult{}
	for _, r := range routes {
		results[r.name] = map[time.Duration]*wanResult{}
		for _, rtt := range rtts {
			if r.direct && rtt != 0 {
				continue
			}
			b.Run(fmt.Sprintf("%s/%v", r.name, rtt), func(b *testing.B) {
				if r.name == "ssh -L" && sshdPath() == "" {
					b.Skip("sshd not installed")
				}
				echo, other := r.setup(b, rtt)
				results[r.name][rtt] = measureWAN(b, echo, other)
			})
		}
	}
	var names []string
	for _, r := range routes {
		names = append(names, r.name)
	}
	printWAN(rtts, names, results)
}

// wanRTTs is GANDER_WAN_RTTS's list of extra round-trip times, or all.
func wanRTTs(b *testing.B, all []time.Duration) []time.Duration {
	env := os.Getenv("GANDER_WAN_RTTS")
	if env == "" {
		return all
	}
	var rtts []time.Duration
	for _, f := range strings.Split(env, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			b.Fatalf("GANDER_WAN_RTTS: %v", err)
		}
		rtts = append(rtts, d)
	}
	return rtts
}

// wanRoutePicked says whether GANDER_WAN_ROUTES (if set) picks the route.
func wanRoutePicked(b *testing.B, name string) bool {
	env := os.Getenv("GANDER_WAN_ROUTES")
	if env == "" {
		return true
	}
	re, err := regexp.Compile(env)
	if err != nil {
		b.Fatalf("GANDER_WAN_ROUTES: %v", err)
	}
	return re.MatchString(name)
}

// Sizes and durations of the measurements, chosen to keep the whole
// benchmark within a few minutes on a 2-core machine.
const (
	wanSetupConnections = 100
	wanStreamSize       = 64 << 20
	wanEchoInterval     = 20 * time.Millisecond
	wanEchoFor          = 3 * time.Second
	wanEchoTimeout      = 2 * time.Second        // an echo later than this is a stall
	wanLoadHeadStart    = 500 * time.Millisecond // for the load to fill the queues on the path
	wanSettle           = time.Second            // for the queues to drain after a load
)

// wanResult is one route at one extra RTT.
type wanResult struct {
	setupP50, setupP99 time.Duration
	mbps               float64
	idle               echoStats // no other traffic
	sameForward        echoStats // bulk on another connection of the same forward
	otherForward       echoStats // bulk on another forward
	stoppedReader      echoStats // a stopped reader on another forward
}

// echoStats is a run of 1-byte echoes.
type echoStats struct {
	p50, p99 time.Duration
	n        int
	stall    error // why the echoes stopped before the end, if they did
}

func (e echoStats) String() string {
	if e.stall != nil {
		return fmt.Sprintf("stalled after %d", e.n)
	}
	return fmt.Sprintf("%s / %s", ms(e.p50), ms(e.p99))
}

// p99OrInf is the p99, or +Inf for a run that stalled.
func (e echoStats) p99OrInf() float64 {
	if e.stall != nil {
		return math.Inf(1)
	}
	return float64(e.p99)
}

func measureWAN(b *testing.B, echo, other string) *wanResult {
	r := &wanResult{}
	r.setupP50, r.setupP99 = setupLatency(b, echo, wanSetupConnections)
	r.mbps = streamThroughput(b, echo, wanStreamSize)
	r.idle = echoUnder(b, echo, nil)
	r.sameForward = echoUnder(b, echo, func() io.Closer { return startBulkWAN(b, echo) })
	r.otherForward = echoUnder(b, echo, func() io.Closer { return startBulkWAN(b, other) })
	// Last: today a stopped reader can stall the whole link for good.
	r.stoppedReader = echoUnder(b, echo, func() io.Closer { return startStoppedReader(b, other) })
	b.Logf("setup %s / %s ms, %.0f MB/s", ms(r.setupP50), ms(r.setupP99), r.mbps)
	for _, e := range []struct {
		name string
		echoStats
	}{{"idle", r.idle}, {"bulk on same forward", r.sameForward}, {"bulk on other forward", r.otherForward}, {"stopped reader", r.stoppedReader}} {
		b.Logf("echo, %s: %v ms, %d echoes (%v)", e.name, e.echoStats, e.n, e.stall)
	}
	return r
}

// echoUnder opens a connection through addr, echoes one byte on it to be
// sure it is through, starts the load (if any), and then echoes one byte
// every wanEchoInterval for wanEchoFor, each waited for before the next.
func echoUnder(b *testing.B, addr string, load func() io.Closer) echoStats {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	one := []byte{'e'}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := echoByte(c, one); err != nil {
		b.Fatalf("first echo through %s: %v", addr, err)
	}
	if load != nil {
		l := load()
		defer func() {
			l.Close()
			time.Sleep(wanSettle)
		}()
		time.Sleep(wanLoadHeadStart)
	}
	var latencies []time.Duration
	tick := time.NewTicker(wanEchoInterval)
	defer tick.Stop()
	var stall error
	for end := time.Now().Add(wanEchoFor); time.Now().Before(end); <-tick.C {
		start := time.Now()
		c.SetDeadline(start.Add(wanEchoTimeout))
		if err := echoByte(c, one); err != nil {
			stall = err
			break
		}
		latencies = append(latencies, time.Since(start))
	}
	s := echoStats{n: len(latencies), stall: stall}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		s.p50 = latencies[len(latencies)/2]
		s.p99 = latencies[(len(latencies)*99+99)/100-1]
	}
	return s
}

// echoByte writes one byte to c and reads one back.
func echoByte(c net.Conn, one []byte) error {
	if _, err := c.Write(one); err != nil {
		return err
	}
	_, err := io.ReadFull(c, one)
	return err
}

// closerFunc is a load's way to stop.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// startBulkWAN pushes data to the daemon's sink through addr as fast as the
// route takes it, until closed.
func startBulkWAN(b *testing.B, addr string) io.Closer {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		copy(buf, binary.BigEndian.AppendUint64([]byte{'S'}, math.MaxInt64))
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	return closerFunc(func() error {
		c.Close() // ends the writer's Write
		<-done
		return nil
	})
}

// startStoppedReader asks the daemon's source, through addr, for more than
// the route can hold, and reads none of it: a local client that stopped
// reading (a paused download, a suspended program).
func startStoppedReader(b *testing.B, addr string) io.Closer {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Write(binary.BigEndian.AppendUint64([]byte{'R'}, 1<<40)); err != nil {
		b.Fatal(err)
	}
	return c
}

// startWANDaemon is the service behind every forward: a connection that
// starts with "S" and an 8-byte length is a sink that reads that much and
// answers "ok"; one that starts with "R" and a length is a source that
// writes that much; anything else is echoed, first byte included.
func startWANDaemon(b *testing.B) string {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveWAN(c)
		}
	}()
	return l.Addr().String()
}

func serveWAN(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 256<<10)
	first, err := r.ReadByte()
	if err != nil {
		return
	}
	if first != 'S' && first != 'R' {
		c.Write([]byte{first})
		io.Copy(c, r)
		return
	}
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return
	}
	size := int64(binary.BigEndian.Uint64(n[:]))
	if first == 'S' {
		if _, err := io.CopyN(io.Discard, r, size); err == nil {
			io.WriteString(c, "ok")
		}
		return
	}
	// The source ends when the client goes: the benchmark closes it.
	io.CopyN(c, zeros{}, size)
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ganderWANForwards runs two gander peers over the relay only, through
// relayHint, with two forwards to daemon, and returns where they listen.
// Without relayHint they connect directly (on loopback).
func ganderWANForwards(b *testing.B, mailboxURL, relayHint, daemon string) (echo, other string) {
	_, port := splitPort(b, daemon)
	gander := func(args ...string) *process {
		common := []string{"--no-tui", "--mailbox", mailboxURL}
		if relayHint != "" {
			common = append(common, "--no-direct", "--relay", relayHint)
		}
		if dir := os.Getenv("GANDER_WAN_LOGS"); dir != "" {
			common = append(common, "--log", filepath.Join(dir, uniqueName(args[0][2:], 0)+".log"))
		}
		return startProcess(b, scratch, wanGanderBin(b), append(common, args...)...)
	}
	offer := gander("--remote", "echo:"+port, "--remote", "other:"+port)
	code := offer.waitFor(b, ganderCode, 30*time.Second)[1]
	accept := gander("--local", "echo", "--local", "other", code)
	listening := map[string]string{}
	re := regexp.MustCompile(`Listening for (echo|other) on (\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for len(listening) < 2 {
		for _, m := range re.FindAllStringSubmatch(accept.stdoutText(), -1) {
			listening[m[1]] = m[2]
		}
		if time.Now().After(deadline) {
			b.Fatalf("gander listens for %v only after 60 s", listening)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitForwarding(b, listening["echo"])
	waitForwarding(b, listening["other"])
	return listening["echo"], listening["other"]
}

// wanGanderBin is GANDER_WAN_BIN, a gander built elsewhere (to compare
// one build with another in the same load), or the one built from here.
func wanGanderBin(b *testing.B) string {
	if bin := os.Getenv("GANDER_WAN_BIN"); bin != "" {
		return bin
	}
	return ganderBin(b)
}

func splitPort(b *testing.B, addr string) (host, port string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	return host, port
}

// uniqueName names a delay line (toxiproxy's names must be unique).
func uniqueName(what string, rtt time.Duration) string {
	return what + "-" + strconv.FormatInt(rtt.Milliseconds(), 10) + "ms-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// ms writes a duration in milliseconds, to one decimal place.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// printWAN prints the table (markdown, for the README), then the goals of
// issue 13 next to what each route but the baseline (ssh -L) measured.
func printWAN(rtts []time.Duration, names []string, results map[string]map[time.Duration]*wanResult) {
	var out strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&out, format, args...) }
	p("\nforwarding through a delay line on loopback (toxiproxy), gander over the relay only; one run (load average %s).\n", loadAverage())
	p("echo: 1 byte every %v, p50 / p99 in ms; setup: connect to the first echoed byte, %d connections, ms; bulk: one %d MiB stream, best of 3\n\n",
		wanEchoInterval, wanSetupConnections, wanStreamSize>>20)
	p("| extra RTT | route | setup p50 / p99 | bulk MB/s | echo idle | echo, bulk on same forward | echo, bulk on other forward | echo, stopped reader on other forward |\n")
	p("|---|---|---|---|---|---|---|---|\n")
	for _, rtt := range rtts {
		for _, name := range names {
			r := results[name][rtt]
			if r == nil {
				continue // not picked, or a direct route
			}
			p("| %v | %s | %s / %s | %.0f | %v | %v | %v | %v |\n", rtt, name, ms(r.setupP50), ms(r.setupP99),
				r.mbps, r.idle, r.sameForward, r.otherForward, r.stoppedReader)
		}
	}
	const baseline = "ssh -L"
	p("\ngoals (issue 13, stated for 50 ms; shown at every RTT; on direct loopback echo ≤ 5 ms), against %s:\n", baseline)
	for _, name := range names {
		if name == baseline {
			continue
		}
		for _, rtt := range rtts {
			g, s := results[name][rtt], results[baseline][rtt]
			if g == nil {
				continue
			}
			p("  %s, %v extra RTT:\n", name, rtt)
			limit := 1.5*float64(rtt) + float64(10*time.Millisecond)
			limitText := "1.5×RTT+10"
			if strings.HasSuffix(name, "direct") {
				limit, limitText, s = float64(5*time.Millisecond), "direct goal", nil
			}
			for _, load := range []struct {
				name string
				of   func(*wanResult) echoStats
			}{
				{"bulk on same forward", func(r *wanResult) echoStats { return r.sameForward }},
				{"bulk on other forward", func(r *wanResult) echoStats { return r.otherForward }},
			} {
				e := load.of(g)
				p("    echo p99, %-21s %s ≤ %s = %s ms  %s", load.name, p99Text(e), limitText, ms(time.Duration(limit)), verdict(e.p99OrInf() <= limit))
				if s != nil {
					theirs := load.of(s)
					p(";  %.2f × ssh's %s (goal ≤ 1×)  %s", e.p99OrInf()/theirs.p99OrInf(), p99Text(theirs), verdict(e.p99OrInf() <= theirs.p99OrInf()))
				}
				p("\n")
			}
			if s != nil {
				p("    bulk %.0f MB/s = %.2f × ssh's %.0f  (goal ≥ 5×)  %s\n", g.mbps, g.mbps/s.mbps, s.mbps, verdict(g.mbps >= 5*s.mbps))
				p("    setup p50 %s ms = %.2f × ssh's %s ms  (goal ≤ 0.6×)  %s\n", ms(g.setupP50), float64(g.setupP50)/float64(s.setupP50), ms(s.setupP50),
					verdict(float64(g.setupP50) <= 0.6*float64(s.setupP50)))
			}
			p("    stopped reader on other forward: echo p99 %s ≤ 2 × idle p99 %s = %s ms  %s\n", p99Text(g.stoppedReader), ms(g.idle.p99),
				ms(2*g.idle.p99), verdict(g.stoppedReader.p99OrInf() <= 2*float64(g.idle.p99)))
		}
	}
	fmt.Print(out.String())
}

// loadAverage is the machine's 1, 5 and 15 minute load averages: other
// work on the machine shows in every latency here.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(data)); err == nil && len(fields) >= 3 {
		return strings.Join(fields[:3], " ")
	}
	return "unknown"
}

// p99Text is an echo run's p99 in ms, or why it stalled.
func p99Text(e echoStats) string {
	if e.stall != nil {
		var timeout net.Error
		if errors.As(e.stall, &timeout) && timeout.Timeout() {
			return fmt.Sprintf("stalled (no echo within %v, after %d)", wanEchoTimeout, e.n)
		}
		return fmt.Sprintf("stalled (%v, after %d)", e.stall, e.n)
	}
	return ms(e.p99) + " ms"
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT MET"
}
