//go:build !linux

package classic

import "os"

const diskWriterKind = "buffered"

func newDiskWriter(f *os.File) diskWriter { return bufferedWriter{f} }
