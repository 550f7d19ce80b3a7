//go:build unix

package forwards

import "syscall"

// readReady reads into p what conn has already received, without waiting
// for more, and returns how much that was.
func readReady(conn syscall.Conn, p []byte) int {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	raw.Read(func(fd uintptr) bool {
		if m, err := syscall.Read(int(fd), p); err == nil && m > 0 {
			n = m
		}
		return true // never wait
	})
	return n
}
