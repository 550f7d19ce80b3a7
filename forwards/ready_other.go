//go:build !unix

package forwards

import "syscall"

// readReady reads nothing where a read that does not wait is not at hand:
// the connection's first bytes then take their own record.
func readReady(syscall.Conn, []byte) int { return 0 }
