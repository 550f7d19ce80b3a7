//go:build !linux

package terminal

import "net"

// SameUserListener is l itself where the owner of a loopback socket
// cannot be read (Linux's /proc/net/tcp): any local user can reach the
// shared terminal's port there, as with tty-share.
func SameUserListener(l net.Listener, onRefused func(error)) net.Listener { return l }
