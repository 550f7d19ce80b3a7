package dilation

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"
)

// BenchmarkEchoUnderBulk is a 1-byte echo's round trip on one subchannel
// while another subchannel of the same connection pushes bulk data as
// fast as it can (gander to gander, loopback TCP): what an interactive
// keystroke waits behind a file transfer. Run with -benchtime=500x; it
// reports p50 and p99 in milliseconds.
func BenchmarkEchoUnderBulk(b *testing.B) {
	a, peer := pair(b, Config{}, Config{})
	echo(b, peer, "echo")
	sink(b, peer, "sink")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bulk, err := a.Open(ctx, "sink")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 256<<10)
		for ctx.Err() == nil {
			if _, err := bulk.Write(buf); err != nil {
				return
			}
		}
	}()
	sc, err := a.Open(ctx, "echo")
	if err != nil {
		b.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := sc.Write(one); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(sc, one); err != nil {
		b.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the bulk stream fill every queue
	rtts := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := sc.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(sc, one); err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(rtts)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(rtts[len(rtts)/2]), "p50-ms")
	b.ReportMetric(ms(rtts[len(rtts)*99/100]), "p99-ms")
	b.ReportMetric(0, "ns/op")
	bulk.Close()
	sc.Close()
}

// BenchmarkSubchannelThroughputNoFlow is BenchmarkSubchannelThroughput
// with the reference's flow control (Config.NoFlowControl), to tell the
// windows' cost from the rest.
func BenchmarkSubchannelThroughputNoFlow(b *testing.B) {
	a, peer := pair(b, Config{NoFlowControl: true}, Config{NoFlowControl: true})
	benchThroughput(b, a, peer)
}

// benchThroughput measures one subchannel's one-way throughput from a to
// peer, in 256 KiB writes.
func benchThroughput(b *testing.B, a, peer *Conn) {
	sink(b, peer, "sink")
	sc, err := a.Open(context.Background(), "sink")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := sc.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	sc.CloseWrite()
	io.Copy(io.Discard, sc)
}
