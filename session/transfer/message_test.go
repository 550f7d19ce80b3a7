package transfer

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

var sampleMessages = []struct {
	name string
	msg  message
	hex  string
}{
	{"file offer", offerMsg{Kind: KindFile, Size: 1 << 30, Files: 1, DigestAlg: "sha256", Name: "a.txt"},
		"01 00000028 01 0000000040000000 0000000000000001 0000000000000000 0006 736861323536 0005 612e747874"},
	{"directory offer", offerMsg{Kind: KindDirectory, Size: 3, Files: 2, Dirs: 1, DigestAlg: "sha256", Name: "d"}, ""},
	{"accept", acceptMsg{}, "0200000000"},
	{"refuse", refuseMsg{Reason: "no"}, "03 00000004 0002 6e6f"},
	{"refuse with a kind", refuseKindMsg{Kind: RefusalByUser, Reason: "no"}, "09 00000005 01 0002 6e6f"},
	{"refuse with a future kind", refuseKindMsg{Kind: 200, Reason: ""}, "09 00000003 c8 0000"},
	{"file entry", entryMsg{Size: 5, Path: "a/b"}, "04 0000000e 01 0000000000000005 0003 612f62"},
	{"directory entry", entryMsg{Dir: true, Path: "a"}, ""},
	{"data", dataMsg("xyz"), "050000000378797a"},
	{"done", doneMsg{Digest: []byte{1, 2, 3}}, "0600000003010203"},
	{"ack", ackMsg{}, "0700000000"},
	{"cancel", cancelMsg{Reason: "disk full"}, ""},
}

func decodeFrame(b []byte) (message, error) {
	return readMessage(bufio.NewReader(bytes.NewReader(b)), make([]byte, maxData))
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, tt := range sampleMessages {
		t.Run(tt.name, func(t *testing.T) {
			frame := appendFrame(nil, tt.msg)
			if tt.hex != "" && hex.EncodeToString(frame) != strings.ReplaceAll(tt.hex, " ", "") {
				t.Errorf("encoded %x\nwant    %s", frame, tt.hex)
			}
			got, err := decodeFrame(frame)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Fatalf("decoded %#v, want %#v", got, tt.msg)
			}
		})
	}
}

// Every strict prefix of a frame is an error, never a message: a peer
// closing mid-frame cannot pass for a shorter message.
func TestTruncatedFrames(t *testing.T) {
	for _, tt := range sampleMessages {
		frame := appendFrame(nil, tt.msg)
		for n := 1; n < len(frame); n++ {
			if m, err := decodeFrame(frame[:n]); err == nil {
				t.Errorf("%s: prefix of %d bytes decoded as %#v", tt.name, n, m)
			}
		}
	}
	// Nothing at all is a clean end of stream.
	if _, err := decodeFrame(nil); err != io.EOF {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
}

func TestMalformedFrames(t *testing.T) {
	tests := map[string]string{
		"unknown type":                "6300000000",
		"control frame too long":      "0100002001",
		"data frame too long":         "0500040001",
		"empty data":                  "0500000000",
		"accept with a body":          "020000000100",
		"trailing bytes":              "030000000500026e6f21",
		"string longer than the body": "0300000002 0009",
		"reason not UTF-8":            "0300000003 0001ff",
		"unknown offer kind":          "0100000021 03 0000000000000000 0000000000000001 0000000000000000 0006736861323536 00017a",
		"offer size out of range":     "0100000021 01 8000000000000000 0000000000000001 0000000000000000 0006736861323536 00017a",
		"offer count out of range":    "0100000021 01 0000000000000000 0000000040000001 0000000000000000 0006736861323536 00017a",
		"directory entry with a size": "040000000c 02 0000000000000001 000161",
		"unknown entry kind":          "040000000c 07 0000000000000000 000161",
		"empty digest":                "0600000000",
		"digest too long":             "0600000041" + strings.Repeat("00", 65),
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeFrame(b)
			var perr *ProtocolError
			if !errors.As(err, &perr) {
				t.Fatalf("decoded %#v, %v; want a *ProtocolError", m, err)
			}
		})
	}
}

func TestTruncateReason(t *testing.T) {
	long := strings.Repeat("é", maxReasonLen) // 2 bytes each
	got := truncateReason(long)
	if len(got) > maxReasonLen || !strings.HasPrefix(long, got) || len(got) < maxReasonLen-1 {
		t.Fatalf("truncated to %d bytes", len(got))
	}
	if got := truncateReason("bad \xff byte"); got != "bad \uFFFD byte" {
		t.Fatalf("got %q", got)
	}
}

// FuzzDecodeFrame feeds arbitrary peer bytes to the frame reader: it must
// never panic or read past a limit, and whatever it accepts must encode
// back to exactly the bytes it consumed.
func FuzzDecodeFrame(f *testing.F) {
	for _, tt := range sampleMessages {
		frame := appendFrame(nil, tt.msg)
		f.Add(frame)                // valid
		f.Add(frame[:len(frame)-1]) // truncated
	}
	f.Add([]byte{typeData, 0xff, 0xff, 0xff, 0xff})   // oversize
	f.Add([]byte{99, 0, 0, 0, 0})                     // unknown type
	f.Add([]byte{typeRefuse, 0, 0, 0, 3, 0, 1, 0xff}) // not UTF-8
	f.Add(append(appendFrame(nil, acceptMsg{}), appendFrame(nil, dataMsg("tail"))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		buf := make([]byte, maxData)
		consumed := 0
		for {
			m, err := readMessage(r, buf)
			if err != nil {
				return
			}
			frame := appendFrame(nil, m)
			if end := consumed + len(frame); end > len(data) || !bytes.Equal(frame, data[consumed:end]) {
				t.Fatalf("%#v re-encodes as %x, read from %x", m, frame, data[consumed:])
			}
			consumed += len(frame)
		}
	})
}
