package transfer

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSend256MiB sends a 256 MiB file over loopback TCP, file to
// file, next to the same copy with no protocol (the ratio of their MB/s is
// the cost of gander-files). Disk writeback makes the numbers noisy:
// TMPDIR=/dev/shm measures the transfer alone.
func BenchmarkSend256MiB(b *testing.B) {
	const size = 256 << 20
	src := filepath.Join(b.TempDir(), "big")
	writeFile(b, src, size)

	b.Run("gander-files", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			dir := b.TempDir()
			a, c := tcpPair(b)
			sent := make(chan error, 1)
			go func() { sent <- Send(context.Background(), a, src, nil) }()
			in, err := ReadOffer(context.Background(), c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := in.Accept(context.Background(), dir, nil); err != nil {
				b.Fatal(err)
			}
			if err := <-sent; err != nil {
				b.Fatal(err)
			}
		}
	})

	// io.Copy between files and TCP uses sendfile and splice; copying
	// through a 256 KiB user buffer is the same work as gander-files minus
	// framing and hashing.
	b.Run("raw-io.Copy", func(b *testing.B) { benchRawCopy(b, src, size, io.Copy) })
	b.Run("raw-io.CopyBuffer", func(b *testing.B) {
		benchRawCopy(b, src, size, func(w io.Writer, r io.Reader) (int64, error) {
			return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, make([]byte, maxData))
		})
	})
}

func benchRawCopy(b *testing.B, src string, size int64, copy func(io.Writer, io.Reader) (int64, error)) {
	b.SetBytes(size)
	for b.Loop() {
		dst := filepath.Join(b.TempDir(), "big")
		a, c := tcpPair(b)
		sent := make(chan error, 1)
		go func() {
			f, err := os.Open(src)
			if err == nil {
				_, err = copy(a, f)
				f.Close()
				a.CloseWrite()
			}
			sent <- err
		}()
		f, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := copy(f, c); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := <-sent; err != nil {
			b.Fatal(err)
		}
	}
}
