package classic

import (
	"bufio"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchFileSize is what one BenchmarkDataPath iteration sends.
const benchFileSize = 256 << 20

// benchFile is a file of random bytes (incompressible, as a real one may be).
func benchFile(b *testing.B, size int64) what {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	// Written back now, not during the timed loop, where it would take
	// the disk from the receiver's writes.
	syscall.Sync()
	item, err := prepare(path)
	if err != nil {
		b.Fatal(err)
	}
	return item
}

// The data path of a transfer in one process: the file read, hashed and
// sealed into records, loopback TCP, records opened, hashed and written to
// a file, both the way this platform writes it (newDiskWriter) and through
// the page cache. Beside BenchmarkSealLoopbackOpen, what the transfer
// costs over the record format.
func BenchmarkDataPath(b *testing.B) {
	item := benchFile(b, benchFileSize)
	s, r := testKeys(b)
	dir := b.TempDir()
	for _, w := range []struct {
		name string
		open func(*os.File) diskWriter
	}{{"disk=" + diskWriterKind, newDiskWriter}, {"disk=buffered", func(f *os.File) diskWriter { return bufferedWriter{f} }}} {
		b.Run(w.name, func(b *testing.B) {
			b.SetBytes(benchFileSize)
			defer reportCPU(b, benchFileSize)()
			for b.Loop() {
				a, c := tcpPair(b)
				src := &recordConn{conn: a, s: sealer{key: s.sealKey}, o: opener{key: s.openKey}}
				dst := &recordConn{conn: c, r: bufio.NewReaderSize(c, 64<<10), s: sealer{key: r.sealKey}, o: opener{key: r.openKey}}
				sent := make(chan error, 1)
				go func() {
					_, err := sendData(src, item, newProgress(io.Discard, item.size, true))
					sent <- err
				}()
				out, err := os.CreateTemp(dir, "recv-*")
				if err != nil {
					b.Fatal(err)
				}
				disk := w.open(out)
				if _, err := receiveData(dst, disk, item.size, newProgress(io.Discard, item.size, true)); err != nil {
					b.Fatal(err)
				}
				if err := disk.finish(); err != nil {
					b.Fatal(err)
				}
				if err := <-sent; err != nil {
					b.Fatal(err)
				}
				out.Close()
				os.Remove(out.Name())
				a.Close()
				c.Close()
			}
		})
	}
}

// reportCPU reports, when the returned func runs, the CPU time the process
// spent per byte (user and system, all threads): unlike the rate, it
// hardly changes with the machine's load, and on two idle cores a
// CPU-bound transfer runs at about 2 / (cpu-ns/B) GB/s.
func reportCPU(b *testing.B, perOp int64) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(perOp*int64(b.N)), "cpu-ns/B")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
