package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkForwarding compares, in one run, a forwarded TCP stream through
// gander↔gander, fowl↔fowl (26.8) and `ssh -L` to a local sshd, with raw
// loopback TCP as the baseline: the throughput of one stream, and the
// setup latency (connect to the first echoed byte) over 1000 connections.
//
//	./e2e/test.sh -run '^$' -bench Forwarding -benchtime 1x
func BenchmarkForwarding(b *testing.B) {
	const size = 256 << 20
	const connections = 1000
	daemon := startBenchDaemon(b)
	mailbox := startMailbox(b)

	routes := []struct {
		name  string
		setup func(b *testing.B) string // returns the address to connect to
	}{
		{"raw loopback TCP", func(*testing.B) string { return daemon }},
		{"gander↔gander", func(b *testing.B) string { return ganderForward(b, mailbox.URL, daemon) }},
		// The Go runtime's cost per wake-up, with both peers, the client
		// and the daemon sharing two cores: one P each makes fewer.
		{"gander GOMAXPROCS=1", func(b *testing.B) string { return ganderForward(b, mailbox.URL, daemon, "GOMAXPROCS=1") }},
		{"fowl↔fowl", func(b *testing.B) string { return fowlForward(b, mailbox.URL, daemon) }},
		{"ssh -L", func(b *testing.B) string { return sshForward(b, daemon) }},
	}
	type result struct {
		mbps     float64
		p50, p99 time.Duration
		skipped  string
	}
	results := map[string]result{}
	for _, route := range routes {
		b.Run(route.name, func(b *testing.B) {
			var r result
			if route.name == "ssh -L" && sshdPath() == "" {
				r.skipped = "sshd not installed"
			} else {
				addr := route.setup(b)
				r.mbps = streamThroughput(b, addr, size)
				r.p50, r.p99 = setupLatency(b, addr, connections)
			}
			results[route.name] = r
		})
	}

	raw := results["raw loopback TCP"]
	fmt.Printf("\nforwarded TCP over loopback: one %d MiB stream; setup latency over %d connections\n", size>>20, connections)
	for _, route := range routes {
		r, ran := results[route.name]
		switch {
		case !ran:
			continue
		case r.skipped != "":
			fmt.Printf("  %-19s skipped: %s\n", route.name, r.skipped)
			continue
		}
		fmt.Printf("  %-19s %7.0f MB/s (%.2f × raw)   setup p50 %9v  p99 %9v\n",
			route.name, r.mbps, r.mbps/raw.mbps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
	}
	g, gok := results["gander↔gander"]
	for _, other := range []string{"fowl↔fowl", "ssh -L"} {
		if o, ok := results[other]; gok && ok && o.skipped == "" {
			fmt.Printf("  gander vs %-9s throughput %.2f×, setup p50 %.3f×\n", other, g.mbps/o.mbps, float64(g.p50)/float64(o.p50))
		}
	}
}

// startBenchDaemon serves two things on one port: a connection that starts
// with "S" and an 8-byte length is a sink that answers "ok" once it has
// read that many bytes; any other first byte is echoed, and so is the rest.
// Neither needs a half-close, which fowl does not forward.
func startBenchDaemon(b *testing.B) string {
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
			go func() {
				defer c.Close()
				r := bufio.NewReaderSize(c, 256<<10)
				first, err := r.ReadByte()
				if err != nil {
					return
				}
				if first != 'S' {
					c.Write([]byte{first})
					io.Copy(c, r)
					return
				}
				var n [8]byte
				if _, err := io.ReadFull(r, n[:]); err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint64(n[:]))); err == nil {
					io.WriteString(c, "ok")
				}
			}()
		}
	}()
	return l.Addr().String()
}

// streamThroughput sends size bytes to the sink through addr, best of 3.
func streamThroughput(b *testing.B, addr string, size int) float64 {
	best := 0.0
	buf := make([]byte, 256<<10)
	for range 3 {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		header := binary.BigEndian.AppendUint64([]byte{'S'}, uint64(size))
		if _, err := c.Write(header); err != nil {
			b.Fatal(err)
		}
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf[:min(len(buf), size-sent)]); err != nil {
				b.Fatal(err)
			}
		}
		ack := make([]byte, 2)
		c.SetReadDeadline(time.Now().Add(5 * time.Minute))
		if _, err := io.ReadFull(c, ack); err != nil || string(ack) != "ok" {
			b.Fatalf("sink through %s: %q, %v", addr, ack, err)
		}
		c.Close()
		best = max(best, float64(size)/time.Since(start).Seconds()/1e6)
	}
	return best
}

// setupLatency measures connect-to-first-echoed-byte for n sequential
// connections and returns the median and 99th percentile.
func setupLatency(b *testing.B, addr string, n int) (p50, p99 time.Duration) {
	latencies := make([]time.Duration, 0, n)
	one := []byte{'e'}
	for range n {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			b.Fatalf("echo through %s: %v", addr, err)
		}
		latencies = append(latencies, time.Since(start))
		c.Close()
	}
	slices.Sort(latencies)
	return latencies[n/2], latencies[n*99/100]
}

// waitForwarding polls until a connection through addr is echoed.
func waitForwarding(b *testing.B, addr string) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			one := []byte{'e'}
			_, err = c.Write(one)
			if err == nil {
				_, err = io.ReadFull(c, one)
			}
			c.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("no forwarding through %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ganderForward runs two gander peers, with env (NAME=VALUE settings)
// added to their environment, forwarding to daemon.
func ganderForward(b *testing.B, mailboxURL, daemon string, env ...string) string {
	_, port, _ := net.SplitHostPort(daemon)
	gander := func(args ...string) *process {
		return startProcess(b, scratch, "env", append(append(env, ganderBin(b), "--mailbox", mailboxURL, "--relay", "tcp:127.0.0.1:1"), args...)...)
	}
	offer := gander("--remote", "bench:"+port)
	code := offer.waitFor(b, regexp.MustCompile(`Wormhole code is: (\S+)`), 30*time.Second)[1]
	accept := gander("--local", "bench", code)
	addr := accept.waitFor(b, regexp.MustCompile(`Listening for bench on (\S+)`), 60*time.Second)[1]
	waitForwarding(b, addr)
	return addr
}

func fowlForward(b *testing.B, mailboxURL, daemon string) string {
	_, port, _ := net.SplitHostPort(daemon)
	listen := strconv.Itoa(freePort(b))
	// Both sides given the same code: each just claims the nameplate.
	const code = "71-bench-fowl"
	startProcess(b, scratch, venvBin(b, "fowl"), "--mailbox", mailboxURL, "--remote", "bench:"+port, code)
	startProcess(b, scratch, venvBin(b, "fowl"), "--mailbox", mailboxURL, "--local", "bench:"+listen, code)
	addr := "127.0.0.1:" + listen
	waitForwarding(b, addr)
	return addr
}

func sshdPath() string {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/bin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// sshForward runs a private sshd on loopback (its own host key, one
// authorised key, no other configuration) and `ssh -N -L` through it.
func sshForward(b *testing.B, daemon string) string {
	return sshForwards(b, daemon, 1, nil)[0]
}

// sshForwards is sshForward with n `-L` forwards to daemon on one ssh
// connection, which goes to via(sshd's address) when via is not nil (a
// delay line in front of sshd, say).
func sshForwards(b *testing.B, daemon string, n int, via func(sshd string) string) []string {
	dir := b.TempDir()
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	hostKey, userKey := filepath.Join(dir, "host_key"), filepath.Join(dir, "user_key")
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", userKey)
	pub, err := os.ReadFile(userKey + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	os.WriteFile(authorized, pub, 0o600)
	sshPort := strconv.Itoa(freePort(b))
	config := filepath.Join(dir, "sshd_config")
	os.WriteFile(config, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %s
HostKey %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile %s
AllowTcpForwarding yes
`, sshPort, hostKey, authorized, filepath.Join(dir, "sshd.pid"))), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	sshd := startProcess(b, dir, sshdPath(), "-D", "-e", "-f", config)
	waitListening(b, "127.0.0.1:"+sshPort, sshd)
	sshHost, sshdAddr := "127.0.0.1", "127.0.0.1:"+sshPort
	if via != nil {
		sshHost, sshPort, _ = net.SplitHostPort(via(sshdAddr))
	}
	args := []string{"-N", "-p", sshPort, "-i", userKey,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"}
	var addrs []string
	for range n {
		listen := "127.0.0.1:" + strconv.Itoa(freePort(b))
		args = append(args, "-L", listen+":"+daemon)
		addrs = append(addrs, listen)
	}
	startProcess(b, dir, "ssh", append(args, "root@"+sshHost)...)
	for _, addr := range addrs {
		waitForwarding(b, addr)
	}
	return addrs
}
