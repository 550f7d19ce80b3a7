package terminal

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// sameUserListener listens on a loopback port with SameUserListener,
// closed when the test ends; refused has its refusals.
func sameUserListener(t *testing.T) (sl net.Listener, refused chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused = make(chan error, 1)
	sl = SameUserListener(l, func(err error) { refused <- err })
	t.Cleanup(func() { sl.Close() })
	return sl, refused
}

func TestSameUserListenerRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	// The system's python, which another user may run (a user's pyenv
	// shim under /root is not).
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("needs " + python)
	}
	sl, refused := sameUserListener(t)
	go sl.Accept() // returns when sl closes
	port := strconv.Itoa(sl.Addr().(*net.TCPAddr).Port)
	cmd := exec.Command(python, "-c", "import socket,time; s=socket.create_connection(('127.0.0.1',"+port+")); time.sleep(3)")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	select {
	case err := <-refused:
		if !errors.Is(err, ErrOtherUser) {
			t.Fatalf("refused with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("another user's connection was not refused")
	}
}

func TestSameUserListenerAcceptsOurOwnConnections(t *testing.T) {
	sl, refused := sameUserListener(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := sl.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", sl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case s := <-accepted:
		s.Close()
	case err := <-refused:
		t.Fatalf("our own connection was refused: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing accepted")
	}
}

func TestProcAddr(t *testing.T) {
	// /proc/net/tcp on a little-endian machine writes 127.0.0.1:8080 so.
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("a big-endian machine")
	}
	got := procAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080})
	if got != "0100007F:1F90" {
		t.Fatalf("procAddr = %s", got)
	}
}
