package terminal

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// ErrOtherUser: a loopback connection to the shared terminal came from
// another user's process.
var ErrOtherUser = errors.New("terminal: a connection from another user's process")

// SameUserListener accepts only loopback connections whose other end is
// a socket of this process's user (as /proc/net/tcp says), and closes
// the others: the port that the forwarder dials for the peer is on
// 127.0.0.1, where any local user could otherwise reach the shared
// shell. onRefused, if not nil, hears of each refusal.
func SameUserListener(l net.Listener, onRefused func(error)) net.Listener {
	return &sameUser{Listener: l, onRefused: onRefused}
}

type sameUser struct {
	net.Listener
	onRefused func(error)
}

func (s *sameUser) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := checkSameUser(c); err != nil {
			c.Close()
			if s.onRefused != nil {
				s.onRefused(err)
			}
			continue
		}
		return c, nil
	}
}

func checkSameUser(c net.Conn) error {
	remote, ok1 := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: not TCP", ErrOtherUser)
	}
	table := "/proc/net/tcp"
	if remote.IP.To4() == nil {
		table = "/proc/net/tcp6"
	}
	uid, err := socketOwner(table, remote, local)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOtherUser, err)
	}
	if uid != os.Getuid() {
		return fmt.Errorf("%w (uid %d, from %s)", ErrOtherUser, uid, remote)
	}
	return nil
}

// socketOwner finds the uid of the socket whose local address is
// from and remote address is to.
func socketOwner(table string, from, to *net.TCPAddr) (int, error) {
	f, err := os.Open(table)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	want := procAddr(from) + " " + procAddr(to)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1]+" "+fields[2] != want {
			continue
		}
		return strconv.Atoi(fields[7])
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no socket %s in %s", want, table)
}

// procAddr is a TCP address as /proc/net/tcp{,6} writes it: the address
// as 32-bit words in host byte order, in hex, then the port.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		ip = a.IP.To16()
	}
	var b strings.Builder
	for i := 0; i < len(ip); i += 4 {
		var w [4]byte
		binary.NativeEndian.PutUint32(w[:], binary.BigEndian.Uint32(ip[i:i+4]))
		b.WriteString(strings.ToUpper(hex.EncodeToString(w[:])))
	}
	fmt.Fprintf(&b, ":%04X", a.Port)
	return b.String()
}
