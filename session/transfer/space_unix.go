//go:build linux || darwin

package transfer

import (
	"math"

	"golang.org/x/sys/unix"
)

// diskSpace reports what the file system holding dir has free.
func diskSpace(dir string) (Space, bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Space{}, false, err
	}
	bsize := uint64(st.Bsize)
	clamp := func(v uint64) int64 { return int64(min(v, math.MaxInt64)) }
	return Space{
		Free:      clamp(uint64(st.Bavail) * bsize),
		Total:     clamp(uint64(st.Blocks) * bsize),
		FreeFiles: clamp(uint64(st.Ffree)),
		Files:     clamp(uint64(st.Files)),
	}, true, nil
}
