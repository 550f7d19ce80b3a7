package transfer

import "fmt"

// Space is what a file system has: bytes free for us and in all, and
// inodes (Files is 0 where the file system does not count them).
type Space struct {
	Free, Total      int64
	FreeFiles, Files int64
}

// keepFree is how much of a file system of total bytes a transfer must
// leave free: some of it, so that a peer cannot fill the disk to the last
// byte, but not so much that a small disk takes nothing.
func keepFree(total int64) int64 {
	return min(maxKeepFree, total/keepFreeShare)
}

// FormatSize shows a byte count as people read it: "512 B", "1.5 MiB".
func FormatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %ciB", v, units[i])
	}
	return fmt.Sprintf("%.0f %ciB", v, units[i])
}
