package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/secretbox"
)

// One 1 GiB file, sent once by each pair, sha256 compared: gander both
// ways with the reference, and the throughput of gander → gander beside
// `wormhole send` py → py, wormhole-william → wormhole-william and the
// ceiling of the record format on this machine (seal → loopback TCP →
// open, in one process).
func TestClassicGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfers")
	}
	williamBin(t)
	mailbox := startMailbox(t)
	if _, err := startTwist(t, t.TempDir(), 4001, "transitrelay", "--port=tcp:4001:interface=127.0.0.1"); err != nil {
		t.Fatalf("a transit relay on 127.0.0.1:4001: %v", err)
	}
	const size = 1 << 30
	src := filepath.Join(t.TempDir(), "gib.bin")
	writeRandomFile(t, src, size)
	want := sha256File(t, src)
	env := classicEnv{mailbox: mailbox.URL}
	t.Logf("load average at the start: %s", loadAverage())
	// The ceilings first and again last: the machine is shared, and what
	// it gives changes during the run.
	ceilings := []ceilingRates{measureCeilings(t, size)}
	rates := map[string]float64{}
	cpu := map[string]float64{} // both processes' CPU time, ns a byte
	type pairing struct {
		name     string
		from, to classicPeer
		bin      string // another gander binary than this tree's
	}
	pairs := []pairing{
		{"gander to gander", ganderClassic, ganderClassic, ""},
		{"gander to python", ganderClassic, pyClassic, ""},
		{"python to gander", pyClassic, ganderClassic, ""},
		{"python to python", pyClassic, pyClassic, ""},
		{"wormhole-william to wormhole-william", williamClassic, williamClassic, ""},
	}
	// GANDER_OLD_BIN: an older gander, run alternately with this one
	// (new, old, new, old) so that both see the same load.
	if old := os.Getenv("GANDER_OLD_BIN"); old != "" {
		pairs = append(pairs[:1], append([]pairing{
			{"old gander to old gander", ganderClassic, ganderClassic, old},
			{"gander to gander (again)", ganderClassic, ganderClassic, ""},
			{"old gander to old gander (again)", ganderClassic, ganderClassic, old},
		}, pairs[1:]...)...)
	}
	for _, pair := range pairs {
		t.Run(pair.name, func(t *testing.T) {
			e := env
			e.ganderBin = pair.bin
			if pair.from.name == "wormhole-william" {
				e.publicRelayHere = true
			}
			// What earlier pairs left for the kernel to write back would
			// otherwise be written during this one, on the same two cores.
			syscall.Sync()
			sendProc, code := pair.from.send(t, e, src)
			dir := t.TempDir()
			recvProc := pair.to.receive(t, e, dir, code, accepting(pair.to)...)
			// From the offer's arrival, so that the mailbox's round trips
			// weigh alike on every pair.
			recvProc.waitFor(t, regexp.MustCompile(`(?i)receiving`), classicTimeout)
			start := time.Now()
			if err := recvProc.wait(t, 5*time.Minute); err != nil {
				t.Fatalf("receive: %v\n%s\nsend:\n%s", err, recvProc.output(), sendProc.output())
			}
			elapsed := time.Since(start)
			if err := sendProc.wait(t, classicTimeout); err != nil {
				t.Fatalf("send: %v\n%s", err, sendProc.output())
			}
			got := filepath.Join(dir, filepath.Base(src))
			if h := sha256File(t, got); h != want {
				t.Fatalf("received sha256 %s, sent %s", h, want)
			}
			os.Remove(got)
			rates[pair.name] = size / elapsed.Seconds() / 1e6
			s, r := float64(exitedCPU(sendProc).Nanoseconds())/size, float64(exitedCPU(recvProc).Nanoseconds())/size
			cpu[pair.name] = s + r
			t.Logf("%s: 1 GiB in %v: %.0f MB/s; CPU %.2f ns/B (sender %.2f, receiver %.2f)", pair.name, elapsed.Round(time.Millisecond), rates[pair.name], s+r, s, r)
		})
	}
	ceilings = append(ceilings, measureCeilings(t, size))
	t.Logf("load average at the end: %s", loadAverage())
	var c ceilingRates
	for _, m := range ceilings {
		t.Logf("ceilings: record format %.0f MB/s (CPU %.2f ns/B); with the two sha256s %.0f MB/s (CPU %.2f ns/B)",
			m.records, m.recordsCPU, m.withHashes, m.withHashesCPU)
		c.records, c.withHashes = max(c.records, m.records), max(c.withHashes, m.withHashes)
		c.recordsCPU, c.withHashesCPU = m.recordsCPU, m.withHashesCPU
	}
	if o, ok := rates["old gander to old gander"]; ok {
		t.Logf("this gander / the old one: %.2f and %.2f (rate), %.2f and %.2f (CPU a byte, old / this)",
			rates["gander to gander"]/o, rates["gander to gander (again)"]/rates["old gander to old gander (again)"],
			cpu["old gander to old gander"]/cpu["gander to gander"], cpu["old gander to old gander (again)"]/cpu["gander to gander (again)"])
	}
	ours, py, william := rates["gander to gander"], rates["python to python"], rates["wormhole-william to wormhole-william"]
	t.Logf("gander → gander %.0f MB/s = %.2f × the record-format ceiling (goal ≥ 0.8), %.2f × that ceiling with the sha256s, %.2f × py → py %.0f MB/s (goal ≥ 1.5), %.2f × wormhole-william %.0f MB/s",
		ours, ours/c.records, ours/c.withHashes, ours/py, py, ours/william, william)
	t.Logf("CPU a byte: gander → gander %.2f ns, py → py %.2f ns, wormhole-william %.2f ns; ceilings %.2f ns (records), %.2f ns (with the sha256s): on two idle cores the ceilings' ratio bounds gander's at about %.2f",
		cpu["gander to gander"], cpu["python to python"], cpu["wormhole-william to wormhole-william"], c.recordsCPU, c.withHashesCPU, c.recordsCPU/cpu["gander to gander"])
}

// ceilingRates are one measurement of the ceilings, in MB/s and in CPU
// ns a byte.
type ceilingRates struct {
	records, recordsCPU       float64
	withHashes, withHashesCPU float64
}

func measureCeilings(t *testing.T, n int64) ceilingRates {
	var c ceilingRates
	c.records, c.recordsCPU = sealLoopbackOpen(t, n, false)
	c.withHashes, c.withHashesCPU = sealLoopbackOpen(t, n, true)
	return c
}

// exitedCPU is the user and system time an exited process (and the
// children it waited for) used.
func exitedCPU(p *process) time.Duration {
	if p.cmd.ProcessState == nil {
		return 0
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// selfCPU is this process's user and system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sealLoopbackOpen measures n bytes sealed in secretbox records of the
// size gander sends (256 KiB), sent over loopback TCP and opened: the
// record format's cost here with no file, disk or protocol around it. It
// is like for like with a transfer's stages: the sealing in one goroutine
// (gander's sealing stage), the reading and opening in another (its
// receiving stage), the rest of the process idle. withHashes adds what
// the protocol also makes each side do, the sha256 of the data, each in a
// goroutine of its own beside the crypto as gander does. It returns MB/s
// and this process's CPU time in ns a byte.
func sealLoopbackOpen(t *testing.T, n int64, withHashes bool) (rate, cpuPerByte float64) {
	t.Helper()
	const record = 256 << 10
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var key [32]byte
	// hasher hashes what it is given beside the caller, when withHashes.
	hasher := func() (chan<- []byte, <-chan []byte) {
		in, out := make(chan []byte, 4), make(chan []byte, 5)
		go func() {
			defer close(out)
			h := sha256.New()
			for b := range in {
				if withHashes {
					h.Write(b)
				}
				out <- b
			}
		}()
		return in, out
	}
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		r := bufio.NewReaderSize(c, 64<<10)
		buf := make([]byte, record+64)
		toHash, hashed := hasher()
		free := make(chan []byte, 5)
		for range 5 {
			free <- make([]byte, 0, record)
		}
		var got int64
		for got < n {
			var hdr [4]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				done <- err
				return
			}
			rec := buf[:binary.BigEndian.Uint32(hdr[:])]
			if _, err := io.ReadFull(r, rec); err != nil {
				done <- err
				return
			}
			var out []byte
			select {
			case out = <-free:
			case out = <-hashed:
			}
			plain, ok := secretbox.Open(out[:0], rec[24:], (*[24]byte)(rec[:24]), &key)
			if !ok {
				done <- io.ErrUnexpectedEOF
				return
			}
			toHash <- plain
			got += int64(len(plain))
		}
		close(toHash)
		for range hashed {
		}
		done <- nil
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	toHash, hashed := hasher()
	for range 4 {
		toHash <- make([]byte, record)
	}
	sealed := make([]byte, 0, 4+24+record+secretbox.Overhead)
	startCPU, start := selfCPU(), time.Now()
	var nonce [24]byte
	for sent, i := int64(0), uint64(0); sent < n; sent, i = sent+record, i+1 {
		plain := <-hashed // hashed (as gander's reading stage does) and free
		binary.BigEndian.PutUint64(nonce[16:], i)
		out := binary.BigEndian.AppendUint32(sealed[:0], 24+record+secretbox.Overhead)
		out = append(out, nonce[:]...)
		out = secretbox.Seal(out, plain, &nonce, &key)
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		toHash <- plain
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	elapsed, usedCPU := time.Since(start), selfCPU()-startCPU
	close(toHash)
	for range hashed {
	}
	return float64(n) / elapsed.Seconds() / 1e6, float64(usedCPU.Nanoseconds()) / float64(n)
}
