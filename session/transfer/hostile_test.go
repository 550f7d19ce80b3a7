package transfer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// frames encodes messages back to back.
func frames(msgs ...message) []byte {
	var b []byte
	for _, m := range msgs {
		b = appendFrame(b, m)
	}
	return b
}

func fileOffer(name string, size int64) offerMsg {
	return offerMsg{Kind: KindFile, Size: size, Files: 1, DigestAlg: digestAlg, Name: name}
}

func dirOffer(name string, size int64, files, dirs int) offerMsg {
	return offerMsg{Kind: KindDirectory, Size: size, Files: files, Dirs: dirs, DigestAlg: digestAlg, Name: name}
}

func digestOf(data string) doneMsg {
	sum := sha256.Sum256([]byte(data))
	return doneMsg{Digest: sum[:]}
}

// treeDigest is what an honest sender puts in DONE after these messages.
func treeDigest(msgs ...message) doneMsg {
	h := sha256.New()
	for _, m := range msgs {
		if d, ok := m.(dataMsg); ok {
			h.Write(d)
		} else {
			h.Write(appendFrame(nil, m)[frameHeaderLen:])
		}
	}
	return doneMsg{Digest: h.Sum(nil)}
}

// fakeSender writes offer and, once the receiver accepts (or at once if
// early), stream; then it half-closes and returns what the receiver said.
func fakeSender(c *net.TCPConn, offer, stream []byte, early bool) <-chan []message {
	said := make(chan []message, 1)
	go func() {
		var got []message
		defer func() { c.Close(); said <- got }()
		c.Write(offer)
		if early {
			c.Write(stream)
			c.CloseWrite()
		}
		r := bufio.NewReader(c)
		buf := make([]byte, maxData)
		for {
			m, err := readMessage(r, buf)
			if err != nil {
				return
			}
			got = append(got, m)
			if _, ok := m.(acceptMsg); ok && !early {
				c.Write(stream)
				c.CloseWrite()
			}
			if _, ok := m.(cancelMsg); ok {
				c.CloseWrite()
			}
		}
	}()
	return said
}

func isUnsafe(err error) bool   { var e *UnsafeNameError; return errors.As(err, &e) }
func isProtocol(err error) bool { var e *ProtocolError; return errors.As(err, &e) }
func isSize(err error) bool     { return errors.Is(err, ErrSizeMismatch) }
func isDigest(err error) bool   { return errors.Is(err, ErrDigestMismatch) }
func isFailure(err error) bool  { return err != nil }
func isPeerCancel(err error) bool {
	var e *CanceledError
	return errors.As(err, &e) && e.ByPeer
}

func TestHostileSender(t *testing.T) {
	bigHeader := func(typ byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{typ}, n)
	}
	entry := func(p string, size int64) entryMsg { return entryMsg{Path: p, Size: size} }
	dirEntry := func(p string) entryMsg { return entryMsg{Path: p, Dir: true} }
	tests := []struct {
		name   string
		offer  []byte
		stream []byte
		early  bool // send the stream without waiting for ACCEPT
		// offerErr checks ReadOffer's error; nil: it must succeed, and
		// acceptErr checks Accept's.
		offerErr, acceptErr func(error) bool
		peerTold            bool // the fake must get a CANCEL
	}{
		{name: "parent traversal", offer: frames(fileOffer("../x", 1)), offerErr: isUnsafe, peerTold: true},
		{name: "absolute path", offer: frames(fileOffer("/etc/passwd", 1)), offerErr: isUnsafe, peerTold: true},
		{name: "dot dot", offer: frames(fileOffer("..", 1)), offerErr: isUnsafe, peerTold: true},
		{name: "NUL in name", offer: frames(fileOffer("a\x00b", 1)), offerErr: isUnsafe, peerTold: true},
		{name: "escape sequence in name", offer: frames(fileOffer("a\x1b[31mb", 1)), offerErr: isUnsafe, peerTold: true},
		{name: "device name", offer: frames(fileOffer("CON", 1)), offerErr: isUnsafe, peerTold: true},
		{name: "drive letter", offer: frames(fileOffer(`C:\Windows`, 1)), offerErr: isUnsafe, peerTold: true},
		{name: "empty name", offer: frames(fileOffer("", 1)), offerErr: isUnsafe, peerTold: true},
		{name: "unknown digest", offer: frames(offerMsg{Kind: KindFile, Files: 1, DigestAlg: "md5", Name: "x"}), offerErr: isProtocol, peerTold: true},
		{name: "file offer with two files", offer: frames(offerMsg{Kind: KindFile, Files: 2, DigestAlg: digestAlg, Name: "x"}), offerErr: isProtocol, peerTold: true},
		{name: "huge offer frame", offer: bigHeader(typeOffer, 1<<30), offerErr: isProtocol, peerTold: true},
		{name: "not an offer", offer: frames(acceptMsg{}), offerErr: isProtocol, peerTold: true},
		{name: "closed before offering", offer: nil, offerErr: isPeerCancel},

		{name: "data before accept", offer: frames(fileOffer("x", 3)), stream: frames(dataMsg("abc")), early: true, acceptErr: isProtocol, peerTold: true},
		{name: "huge data frame", offer: frames(fileOffer("x", 1<<40)), stream: bigHeader(typeData, 1<<31), acceptErr: isProtocol, peerTold: true},
		{name: "unknown frame type", offer: frames(fileOffer("x", 3)), stream: bigHeader(99, 0), acceptErr: isProtocol, peerTold: true},
		{name: "more bytes than offered", offer: frames(fileOffer("x", 3)), stream: frames(dataMsg("abcdef"), digestOf("abcdef")), acceptErr: isSize, peerTold: true},
		{name: "fewer bytes than offered", offer: frames(fileOffer("x", 6)), stream: frames(dataMsg("abc"), digestOf("abc")), acceptErr: isSize, peerTold: true},
		{name: "digest mismatch", offer: frames(fileOffer("x", 3)), stream: frames(dataMsg("abc"), digestOf("abd")), acceptErr: isDigest, peerTold: true},
		{name: "closed mid-file", offer: frames(fileOffer("x", 6)), stream: frames(dataMsg("abc")), acceptErr: isPeerCancel},
		{name: "truncated frame", offer: frames(fileOffer("x", 6)), stream: frames(dataMsg("abc"))[:6], acceptErr: isProtocol, peerTold: true},
		{name: "canceled mid-file", offer: frames(fileOffer("x", 6)), stream: frames(dataMsg("abc"), cancelMsg{Reason: "oops"}), acceptErr: isPeerCancel},
		{name: "entry in a file transfer", offer: frames(fileOffer("x", 3)), stream: frames(entry("y", 3)), acceptErr: isProtocol, peerTold: true},

		{name: "entry traversal", offer: frames(dirOffer("d", 1, 1, 0)), stream: frames(entry("../x", 1), dataMsg("a")), acceptErr: isUnsafe, peerTold: true},
		{name: "entry absolute", offer: frames(dirOffer("d", 1, 1, 0)), stream: frames(entry("/etc/passwd", 1), dataMsg("a")), acceptErr: isUnsafe, peerTold: true},
		{name: "entry inner traversal", offer: frames(dirOffer("d", 1, 1, 1)), stream: frames(dirEntry("a"), entry("a/../../b", 1), dataMsg("a")), acceptErr: isUnsafe, peerTold: true},
		{name: "entry empty element", offer: frames(dirOffer("d", 1, 1, 1)), stream: frames(dirEntry("a"), entry("a//b", 1)), acceptErr: isUnsafe, peerTold: true},
		{name: "entry trailing slash", offer: frames(dirOffer("d", 0, 0, 1)), stream: frames(dirEntry("a/")), acceptErr: isUnsafe, peerTold: true},
		{name: "entry NUL", offer: frames(dirOffer("d", 1, 1, 0)), stream: frames(entry("x\x00y", 1)), acceptErr: isUnsafe, peerTold: true},
		{name: "entry backslash", offer: frames(dirOffer("d", 1, 1, 0)), stream: frames(entry(`..\x`, 1)), acceptErr: isUnsafe, peerTold: true},
		{name: "entry device", offer: frames(dirOffer("d", 1, 1, 1)), stream: frames(dirEntry("a"), entry("a/nul", 1)), acceptErr: isUnsafe, peerTold: true},
		{name: "entry without parent", offer: frames(dirOffer("d", 1, 1, 0)), stream: frames(entry("nope/x", 1)), acceptErr: isFailure, peerTold: true},
		{name: "duplicate entry", offer: frames(dirOffer("d", 2, 2, 0)), stream: frames(entry("x", 1), dataMsg("a"), entry("x", 1)), acceptErr: isFailure, peerTold: true},
		{name: "entry bigger than offer", offer: frames(dirOffer("d", 3, 1, 0)), stream: frames(entry("x", 4)), acceptErr: isSize, peerTold: true},
		{name: "more files than offered", offer: frames(dirOffer("d", 2, 1, 0)), stream: frames(entry("x", 1), dataMsg("a"), entry("y", 1)), acceptErr: isSize, peerTold: true},
		{name: "more directories than offered", offer: frames(dirOffer("d", 0, 0, 1)), stream: frames(dirEntry("x"), dirEntry("y")), acceptErr: isSize, peerTold: true},
		{name: "fewer directories than offered", offer: frames(dirOffer("d", 0, 0, 2)), stream: frames(dirEntry("x"), treeDigest(dirEntry("x"))), acceptErr: isSize, peerTold: true},
		{name: "file cut short by next entry", offer: frames(dirOffer("d", 4, 2, 0)), stream: frames(entry("x", 3), dataMsg("a"), entry("y", 1)), acceptErr: isSize, peerTold: true},
		{name: "data outside a file", offer: frames(dirOffer("d", 1, 1, 0)), stream: frames(dataMsg("a")), acceptErr: isProtocol, peerTold: true},
		{name: "tree digest mismatch", offer: frames(dirOffer("d", 1, 1, 0)), stream: frames(entry("x", 1), dataMsg("a"), treeDigest(entry("y", 1), dataMsg("a"))), acceptErr: isDigest, peerTold: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			parent := t.TempDir()
			dir := filepath.Join(parent, "in")
			os.Mkdir(dir, 0o755)
			a, b := tcpPair(t)
			said := fakeSender(a, tt.offer, tt.stream, tt.early)
			if tt.offer == nil {
				a.CloseWrite()
			}
			in, err := ReadOffer(context.Background(), b)
			switch {
			case tt.offerErr != nil && !tt.offerErr(err):
				t.Fatalf("ReadOffer: %v", err)
			case tt.offerErr == nil && err != nil:
				t.Fatalf("ReadOffer: %v", err)
			case err == nil:
				if tt.early { // let the receiver see it before it accepts
					select {
					case <-in.Withdrawn():
					case <-time.After(5 * time.Second):
						t.Fatal("early data did not withdraw the offer")
					}
				}
				_, err = in.Accept(context.Background(), dir, nil)
				if tt.acceptErr == nil || !tt.acceptErr(err) {
					t.Fatalf("Accept: %v", err)
				}
			}
			var got []message
			select {
			case got = <-said:
			case <-time.After(10 * time.Second):
				t.Fatal("fake sender still running")
			}
			if told := len(got) > 0 && isCancel(got[len(got)-1]); told != tt.peerTold {
				t.Errorf("sender got %v; want a CANCEL: %v", got, tt.peerTold)
			}
			t.Logf("%v; sender got %+v", err, got)
			assertOnly(t, parent, "in")
			assertOnly(t, dir)
		})
	}
}

func isCancel(m message) bool { _, ok := m.(cancelMsg); return ok }
