package transit

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// addressChanges signals, on Linux, each time the kernel reports an
// address added or removed (an rtnetlink multicast group), so that a new
// network is noticed at once rather than at the next poll. It returns nil
// if the socket cannot be had (the poll still works). Its goroutine ends
// with ctx.
func addressChanges(ctx context.Context) <-chan struct{} {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil
	}
	groups := uint32(unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil
	}
	// A non-blocking descriptor in an os.File uses the runtime poller, so
	// Close wakes a pending Read.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	changed := make(chan struct{}, 1)
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 8<<10)
		for {
			if _, err := f.Read(buf); err != nil {
				if ctx.Err() != nil {
					return
				}
				continue // ENOBUFS after a burst: the poll catches up
			}
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	return changed
}
