package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// File transfers gander→gander with the --no-tui command line: a 1 GiB
// file and a tree of 10,000 small files arrive byte-identical, also when
// the (relayed) connection is cut three times on the way.

const (
	bigFileSize = 1 << 30
	treeFiles   = 10_000
	// treeCutRate slows the tree (about 20 MB) to some 4 s over the relay:
	// unthrottled it arrives in a fraction of a second, between two of the
	// receiver's progress reports, so cuts could not be placed in it.
	treeCutRate = 5 << 20
)

var (
	receivedAs       = regexp.MustCompile(`Received (\S+) as (.+)`)
	transferProgress = regexp.MustCompile(`: (\d+) of (\d+) bytes`)
)

func TestFileTransfers(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	src := t.TempDir()
	big := filepath.Join(src, "big.bin")
	writeRandomFile(t, big, bigFileSize)
	tree := filepath.Join(src, "tree")
	writeTree(t, tree, treeFiles)

	raw := rawLoopbackCopy(t, big)
	rawRate := float64(bigFileSize) / raw.Seconds() / 1e6
	t.Logf("raw loopback TCP, file to file: 1 GiB in %v, %.0f MB/s", raw.Round(time.Millisecond), rawRate)

	for _, tc := range []struct {
		name string
		path string
		cuts int
		rate int // bytes a second through the relay; 0: unthrottled
	}{
		{"1 GiB file", big, 0, 0},
		{"10000 files", tree, 0, 0},
		{"1 GiB file, 3 cuts", big, 3, 0},
		{"10000 files, 3 cuts", tree, 3, treeCutRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := transferOnce(t, mailbox.URL, relay, tc.path, tc.cuts, tc.rate)
			sameContent(t, tc.path, r.savedAs)
			line := fmt.Sprintf("%s: %v (%d cuts), peak RSS sender %d MiB, receiver %d MiB",
				tc.name, r.elapsed.Round(time.Millisecond), r.cuts, r.senderRSS>>20, r.receiverRSS>>20)
			if tc.rate > 0 {
				line += fmt.Sprintf(", throttled to %d MiB/s", tc.rate>>20)
			}
			if tc.path == big {
				rate := float64(bigFileSize) / r.elapsed.Seconds() / 1e6
				line += fmt.Sprintf(", %.0f MB/s = %.2f × raw loopback TCP", rate, rate/rawRate)
			}
			t.Log(line)
			fmt.Println(line)
			if r.cuts < tc.cuts {
				t.Errorf("only %d of %d cuts happened during the transfer", r.cuts, tc.cuts)
			}
		})
	}
}

type transferResult struct {
	savedAs                string
	elapsed                time.Duration
	cuts                   int
	senderRSS, receiverRSS int64
}

// transferOnce sends path from one gander to another and returns where it
// was saved. With cuts, both use only the relay, through a proxy that is
// cut at evenly spaced points of the transfer; with a rate, that proxy
// reaches the relay through a throttle.
func transferOnce(t *testing.T, mailboxURL string, relay *transitRelay, path string, cuts, rate int) transferResult {
	t.Helper()
	hint := relay.Hint
	var proxy *faultProxy
	var relayOnly []string
	if cuts > 0 {
		target := relay.Addr
		if rate > 0 {
			target = startThrottle(t, relay.Addr, rate)
		}
		proxy = startProxy(t, target)
		hint = "tcp:" + proxy.Addr
		relayOnly = []string{"--no-direct"}
	}
	saveDir := t.TempDir()
	started := time.Now()
	sender := startGander(t, mailboxURL, append([]string{"--no-tui", "--relay", hint, "--send", path}, relayOnly...)...)
	code := sender.waitFor(t, ganderCode, 30*time.Second)[1]
	receiver := startGander(t, mailboxURL, append([]string{"--no-tui", "--relay", hint, "--accept-files", "--save-dir", saveDir, code}, relayOnly...)...)

	var r transferResult
	next := 1
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if m := receivedAs.FindStringSubmatch(receiver.stdoutText()); m != nil {
			r.savedAs = strings.TrimSpace(m[2])
			break
		}
		if receiver.exited() || time.Now().After(deadline) {
			t.Fatalf("the file did not arrive:\n%s", receiver.output())
		}
		if proxy != nil && next <= cuts {
			all := transferProgress.FindAllStringSubmatch(receiver.stdoutText(), -1)
			if len(all) > 0 {
				done, _ := strconv.ParseInt(all[len(all)-1][1], 10, 64)
				size, _ := strconv.ParseInt(all[len(all)-1][2], 10, 64)
				if done*int64(cuts+1) >= size*int64(next) && done < size && proxy.Cut() > 0 {
					r.cuts++
					next++
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.elapsed = time.Since(started)
	r.senderRSS, r.receiverRSS = peakRSS(t, sender), peakRSS(t, receiver)
	sender.waitFor(t, regexp.MustCompile(`Sent `), 30*time.Second)
	return r
}

// startThrottle forwards TCP connections from a free loopback port to
// target, each direction at most rate bytes a second, until the test ends,
// and returns the address to connect to.
func startThrottle(t *testing.T, target string, rate int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
		conns  []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return // closed by cleanup
			}
			server, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				client.Close()
				server.Close()
				return
			}
			conns = append(conns, client, server)
			wg.Add(2)
			mu.Unlock()
			go func() {
				defer wg.Done()
				copyHalf(server, throttledConn{client, rate})
			}()
			go func() {
				defer wg.Done()
				copyHalf(client, throttledConn{server, rate})
			}()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// throttledConn is read at most rate bytes a second, in reads of 10 ms
// worth each.
type throttledConn struct {
	net.Conn
	rate int
}

func (c throttledConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p[:min(len(p), c.rate/100)])
	time.Sleep(time.Duration(n) * time.Second / time.Duration(c.rate))
	return n, err
}

func peakRSS(t *testing.T, p *process) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no VmHWM in %s", status)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

func writeRandomFile(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{7})
	if _, err := io.CopyN(f, rng, int64(size)); err != nil {
		t.Fatal(err)
	}
}

// writeTree makes n small files (0 to 4 KiB) in 100 directories, two
// levels deep, plus an empty directory.
func writeTree(t *testing.T, root string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i%10), fmt.Sprintf("e%02d", i%100))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data := buf[:rng.IntN(len(buf)+1)]
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.dat", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// sameContent compares two files, or two trees entry by entry.
func sameContent(t *testing.T, want, got string) {
	t.Helper()
	a, b := digestTree(t, want), digestTree(t, got)
	if len(a) != len(b) {
		t.Fatalf("%d entries sent, %d received", len(a), len(b))
	}
	for name, d := range a {
		if b[name] != d {
			t.Fatalf("%q differs: sent %s, received %s", name, d, b[name])
		}
	}
}

// digestTree maps each entry's path (relative to root) to its sha256, or
// "dir" for a directory.
func digestTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawLoopbackCopy is the baseline: the same file read, sent over one
// loopback TCP connection and written to disk, with no protocol at all.
func rawLoopbackCopy(t *testing.T, path string) time.Duration {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dst := filepath.Join(t.TempDir(), "copy")
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		f, err := os.Create(dst)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, c)
		f.Close()
		done <- err
	}()
	started := time.Now()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(c, f)
	f.Close()
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(started)
	os.Remove(dst)
	return elapsed
}

// A receiver that runs out of room (here a 1 MiB file size limit, which
// Go reports as EFBIG, as a full disk gives ENOSPC) fails the transfer on
// both sides, leaves nothing in the save directory, and goes on running.
func TestFileTransferOutOfRoom(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	mailbox := startMailbox(t)
	path := filepath.Join(t.TempDir(), "large.bin")
	writeRandomFile(t, path, 16<<20)
	saveDir := t.TempDir()
	sender := startGander(t, mailbox.URL, "--no-tui", "--send", path)
	code := sender.waitFor(t, ganderCode, 30*time.Second)[1]
	receiver := startProcess(t, scratch, prlimit, "--fsize=1048576", "--", ganderBin(t),
		"--mailbox", mailbox.URL, "--relay", "tcp:127.0.0.1:1", "--no-tui", "--accept-files", "--save-dir", saveDir, code)
	receiver.waitFor(t, regexp.MustCompile(`Transfer of large\.bin failed: .*file too large`), 60*time.Second)
	sender.waitFor(t, regexp.MustCompile(`Transfer of large\.bin failed`), 30*time.Second)
	if entries, _ := os.ReadDir(saveDir); len(entries) != 0 {
		t.Errorf("the save directory holds %v after the failure", entries)
	}
	if receiver.exited() || sender.exited() {
		t.Error("a failed transfer ended the session")
	}
}
