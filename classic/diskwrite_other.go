//go:build !linux

package classic

import "os"

func newDiskWriter(f *os.File) diskWriter { return bufferedWriter{f} }
