package dilation

import (
	"net"

	"golang.org/x/sys/unix"
)

// keepSendQueueShort sets TCP_NOTSENT_LOWAT on the selected connection's
// socket: the kernel then takes more only while less than notSentLowat
// bytes of what we wrote wait unsent, so the backlog stays in the outbox,
// where the scheduler can still put a keystroke ahead of bulk data,
// rather than in a socket buffer sized for throughput. Failing leaves the
// kernel's default, which is slower to interleave but correct.
func keepSendQueueShort(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
	})
}
