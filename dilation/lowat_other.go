//go:build !linux

package dilation

import "net"

// keepSendQueueShort is Linux's TCP_NOTSENT_LOWAT (see lowat_linux.go);
// elsewhere the kernel's default applies.
func keepSendQueueShort(net.Conn) {}
