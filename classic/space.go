package classic

import "golang.org/x/sys/unix"

// FreeSpace reports the bytes an unprivileged writer may still put on the
// filesystem holding dir. Tests replace it (Config.FreeSpace).
type FreeSpace func(dir string) (int64, error)

// StatfsFreeSpace is FreeSpace from statfs(2): the blocks available to
// non-root users (the reference counts root's reserve too, which a
// transfer run as a user cannot use).
func StatfsFreeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
