package classic

import "os"

// diskWriter is how received content reaches its temporary file:
// newDiskWriter picks the fastest way the platform and the filesystem
// allow; finish flushes it (the file stays open).
type diskWriter interface {
	Write(p []byte) (int, error)
	finish() error
}

// bufferedWriter is the plain way, through the page cache.
type bufferedWriter struct{ f *os.File }

func (w bufferedWriter) Write(p []byte) (int, error) { return w.f.Write(p) }
func (w bufferedWriter) finish() error               { return nil }
