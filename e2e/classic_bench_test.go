package e2e

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
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
	rates := map[string]float64{}
	for _, pair := range []struct {
		name     string
		from, to classicPeer
	}{
		{"gander to gander", ganderClassic, ganderClassic},
		{"gander to python", ganderClassic, pyClassic},
		{"python to gander", pyClassic, ganderClassic},
		{"python to python", pyClassic, pyClassic},
		{"wormhole-william to wormhole-william", williamClassic, williamClassic},
	} {
		t.Run(pair.name, func(t *testing.T) {
			e := env
			if pair.from.name == "wormhole-william" {
				e.publicRelayHere = true
			}
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
			t.Logf("%s: 1 GiB in %v: %.0f MB/s", pair.name, elapsed.Round(time.Millisecond), rates[pair.name])
		})
	}
	ceiling := sealLoopbackOpen(t, size) / 1e6
	ours := rates["gander to gander"]
	t.Logf("ceiling (secretbox seal → loopback TCP → open, 256 KiB records): %.0f MB/s", ceiling)
	t.Logf("gander → gander %.0f MB/s = %.2f × ceiling (goal ≥ 0.8), %.2f × py → py %.0f MB/s (goal ≥ 1.5), %.2f × wormhole-william %.0f MB/s",
		ours, ours/ceiling, ours/rates["python to python"], rates["python to python"], ours/rates["wormhole-william to wormhole-william"], rates["wormhole-william to wormhole-william"])
}

// sealLoopbackOpen measures, in bytes a second, n bytes sealed in
// secretbox records, sent over loopback TCP and opened: what the record
// format costs here with no file, disk or protocol around it.
func sealLoopbackOpen(t *testing.T, n int64) float64 {
	t.Helper()
	const record = 256 << 10
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var key [32]byte
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
		out := make([]byte, 0, record)
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
			plain, ok := secretbox.Open(out[:0], rec[24:], (*[24]byte)(rec[:24]), &key)
			if !ok {
				done <- io.ErrUnexpectedEOF
				return
			}
			got += int64(len(plain))
		}
		done <- nil
	}()
	c, err := net.Dial("tcp", "127.0.0.1"+l.Addr().String()[len("127.0.0.1"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain := make([]byte, record)
	sealed := make([]byte, 0, 4+24+record+secretbox.Overhead)
	start := time.Now()
	var nonce [24]byte
	for sent, i := int64(0), uint64(0); sent < n; sent, i = sent+record, i+1 {
		binary.BigEndian.PutUint64(nonce[16:], i)
		out := binary.BigEndian.AppendUint32(sealed[:0], 24+record+secretbox.Overhead)
		out = append(out, nonce[:]...)
		out = secretbox.Seal(out, plain, &nonce, &key)
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}
