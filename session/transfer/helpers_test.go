package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (*net.TCPConn, *net.TCPConn) {
	tb.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, _ := ln.AcceptTCP()
		accepted <- c
	}()
	a, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		tb.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// result is how both sides of one transfer ended.
type result struct {
	sendErr, recvErr error
	saved            string
	progress         []Progress // the receiver's
}

// wantSaved fails the test unless both sides succeeded and the receiver
// saved the transfer as want (any name if want is "").
func (r result) wantSaved(t *testing.T, want string) {
	t.Helper()
	if r.sendErr != nil || r.recvErr != nil {
		t.Fatalf("send: %v, receive: %v", r.sendErr, r.recvErr)
	}
	if want != "" && r.saved != want {
		t.Fatalf("saved as %s, want %s", r.saved, want)
	}
}

// transferOpts adjusts one run of transfer.
type transferOpts struct {
	sendCtx, recvCtx context.Context
	sendProgress     func(Progress)
	recvProgress     func(Progress)
	answer           func(*Incoming, string) (string, error) // default: Accept
}

// transfer sends path over a TCP pair and receives it into dir.
func transfer(t *testing.T, path, dir string, o transferOpts) result {
	t.Helper()
	if o.sendCtx == nil {
		o.sendCtx = context.Background()
	}
	if o.recvCtx == nil {
		o.recvCtx = context.Background()
	}
	a, b := tcpPair(t)
	sent := make(chan error, 1)
	go func() { sent <- Send(o.sendCtx, a, path, o.sendProgress) }()
	var r result
	in, err := ReadOffer(o.recvCtx, b)
	if err != nil {
		r.recvErr = err
	} else if o.answer != nil {
		r.saved, r.recvErr = o.answer(in, dir)
	} else {
		r.saved, r.recvErr = in.Accept(o.recvCtx, dir, func(p Progress) {
			r.progress = append(r.progress, p)
			if o.recvProgress != nil {
				o.recvProgress(p)
			}
		})
	}
	select {
	case r.sendErr = <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("Send did not return")
	}
	return r
}

// writeFile writes n pseudo-random bytes.
func writeFile(tb testing.TB, path string, n int) {
	tb.Helper()
	data := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n)}).Read(data)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// tree lists what is under root: "dir/" for a directory, "file sha256"
// for a file.
func tree(tb testing.TB, root string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
		case d.IsDir():
			out = append(out, rel+"/")
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out = append(out, rel+" "+hex.EncodeToString(sum[:]))
		default:
			out = append(out, rel+" "+d.Type().String())
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// names lists a directory's entries.
func names(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// assertOnly fails unless dir holds exactly want (nothing partial, nothing
// under the offered name).
func assertOnly(tb testing.TB, dir string, want ...string) {
	tb.Helper()
	got := names(tb, dir)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		tb.Fatalf("%s holds %q, want %q", dir, got, want)
	}
}

func sameFile(tb testing.TB, a, b string) {
	tb.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		tb.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		tb.Fatalf("%s and %s differ", a, b)
	}
}
