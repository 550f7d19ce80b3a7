package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/dilation/dilationtest"
)

// BenchmarkDilationThroughput measures, in one run, one subchannel's
// one-way throughput gander→gander and gander→Python over loopback, each
// with raw loopback TCP measured the same way as the baseline:
//
//	./e2e/test.sh -run '^$' -bench DilationThroughput -benchtime 1x
//
// Every transfer ends with the receiver answering the byte count it got,
// so the time covers delivery, not just buffering.
func BenchmarkDilationThroughput(b *testing.B) {
	const size = 512 << 20
	mailbox := startMailbox(b)

	results := map[string]float64{} // MB/s
	measure := func(name string, send func() int64) {
		best := 0.0
		for range 3 {
			start := time.Now()
			if got := send(); got != size {
				b.Fatalf("%s: receiver counted %d bytes, want %d", name, got, size)
			}
			best = max(best, float64(size)/time.Since(start).Seconds()/1e6)
		}
		results[name] = best
	}

	measure("raw loopback TCP", func() int64 { return rawTCPTransfer(b, size) })

	a, peer := dilationtest.Pair(b, dilation.Config{}, dilation.Config{}, dilationtest.Mailbox(mailbox.URL), dilationtest.Timeout(60*time.Second))
	serveSink(b, peer)
	measure("gander→gander", func() int64 { return subchannelTransfer(b, a, size) })

	py := startPythonPeer(b, mailbox.URL, "")
	wp, _ := joinGander(b, mailbox.URL, py.code)
	toPython := dilateGander(b, wp, dilation.Config{})
	py.proc.waitFor(b, jsonDilated, 30*time.Second)
	measure("gander→python", func() int64 { return subchannelTransfer(b, toPython, size) })

	raw := results["raw loopback TCP"]
	fmt.Printf("\nthroughput of %d MiB over one stream, best of 3, loopback:\n", size>>20)
	for _, name := range []string{"raw loopback TCP", "gander→gander", "gander→python"} {
		fmt.Printf("  %-18s %8.0f MB/s   %.2f × raw TCP\n", name, results[name], results[name]/raw)
	}
	b.ReportMetric(results["gander→gander"]/raw, "gander/raw")
	b.ReportMetric(results["gander→python"]/raw, "python/raw")
}

// rawTCPTransfer sends size bytes over a fresh loopback connection to a
// sink that answers the count.
func rawTCPTransfer(b *testing.B, size int) int64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c)
		io.WriteString(c, strconv.FormatInt(n, 10))
		c.Close()
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	return sendAndCount(b, c, c.(*net.TCPConn).CloseWrite, size)
}

func subchannelTransfer(b *testing.B, c *dilation.Conn, size int) int64 {
	sc, err := c.Open(context.Background(), "sink")
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	return sendAndCount(b, sc, sc.CloseWrite, size)
}

// sendAndCount writes size bytes in 256 KiB writes, half-closes, and
// returns the count the receiver answers.
func sendAndCount(b *testing.B, rw io.ReadWriter, closeWrite func() error, size int) int64 {
	buf := make([]byte, 256<<10)
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := rw.Write(buf[:min(len(buf), size-sent)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := closeWrite(); err != nil {
		b.Fatal(err)
	}
	answer, err := io.ReadAll(rw)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.ParseInt(string(answer), 10, 64)
	return n
}

// serveSink answers every "sink" subchannel the way the Python peer does.
func serveSink(b *testing.B, c *dilation.Conn) {
	serve(b, c, "sink", func(sc *dilation.Subchannel) {
		n, _ := io.Copy(io.Discard, sc)
		io.WriteString(sc, strconv.FormatInt(n, 10))
	})
}
