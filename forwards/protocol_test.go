package forwards

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func intPtr(n int) *int { return &n }

// The expected bytes are Python msgpack.packb of the same dicts, as fowl
// 26.8 builds them (see testdata/gen_frames.py).
func TestFramesMatchFowl(t *testing.T) {
	tests := []struct {
		name string
		msg  any
		hex  string
	}{
		{"request, any port", listenRequest{kindRequestListener, "chat", nil},
			"003583a46b696e64b0726571756573742d6c697374656e6572ab756e697175652d6e616d65a463686174ab6c697374656e2d706f7274c0"},
		{"request, port 8888", listenRequest{kindRequestListener, "chat", intPtr(8888)},
			"003783a46b696e64b0726571756573742d6c697374656e6572ab756e697175652d6e616d65a463686174ab6c697374656e2d706f7274cd22b8"},
		{"positive response", listenResponse{Kind: kindListenerResponse, UniqueName: "chat", Listening: true},
			"003483a46b696e64b16c697374656e65722d726573706f6e7365ab756e697175652d6e616d65a463686174a96c697374656e696e67c3"},
		{"positive response with desired port", listenResponse{Kind: kindListenerResponse, UniqueName: "chat", Listening: true, DesiredPort: intPtr(2222)},
			"004484a46b696e64b16c697374656e65722d726573706f6e7365ab756e697175652d6e616d65a463686174a96c697374656e696e67c3ac646573697265642d706f7274cd08ae"},
		{"forward request", forwardRequest{"chat"}, "001281ab756e697175652d6e616d65a463686174"},
		{"forward accepted", forwardReply{Connected: true}, "000c81a9636f6e6e6563746564c3"},
		{"forward refused", forwardReply{Connected: false, Reason: "Against local policy"},
			"002882a9636f6e6e6563746564c2a6726561736f6eb4416761696e7374206c6f63616c20706f6c696379"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeFrame(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tt.hex {
				t.Fatalf("encoded\n%x\nwant\n%s", got, tt.hex)
			}
		})
	}
}

func TestReadFrameLeavesTheStream(t *testing.T) {
	frame, _ := encodeFrame(forwardReply{Connected: true})
	r := bufio.NewReader(bytes.NewReader(append(frame, "stream bytes"...)))
	body, err := readFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	var reply forwardReply
	if err := decodeMessage(body, &reply); err != nil || !reply.Connected {
		t.Fatalf("reply = %+v, %v", reply, err)
	}
	rest, _ := r.ReadString(0)
	if rest != "stream bytes" {
		t.Fatalf("left %q in the stream", rest)
	}
}

func TestMalformedFrames(t *testing.T) {
	tests := map[string][]byte{
		"truncated body":     {0x00, 0x05, 0x81},
		"not msgpack":        {0x00, 0x02, 0xc1, 0xc1},
		"wrong type for key": append([]byte{0x00, 0x0c}, mustHex("81a9636f6e6e6563746564a3796573")...),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			body, err := readFrame(bufio.NewReader(bytes.NewReader(data)))
			if err == nil {
				var reply forwardReply
				err = decodeMessage(body, &reply)
			}
			if !errors.Is(err, errBadFrame) {
				t.Fatalf("err = %v, want errBadFrame", err)
			}
		})
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeFrame(f *testing.F) {
	for _, msg := range []any{
		listenRequest{kindRequestListener, "chat", intPtr(8888)}, // a valid request
		listenResponse{Kind: kindListenerResponse, UniqueName: "x", Listening: false, Reason: "no"},
		forwardRequest{"chat"}, // the forwarding handshake
	} {
		frame, _ := encodeFrame(msg)
		f.Add(frame)
	}
	f.Add([]byte{0xff, 0xff})       // a length with no body
	f.Add([]byte{0x00, 0x01, 0xdf}) // a map32 header with nothing after it
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := readFrame(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		var req listenRequest
		var resp listenResponse
		var fwd forwardRequest
		var reply forwardReply
		decodeKind(body)
		decodeMessage(body, &req)
		decodeMessage(body, &resp)
		decodeMessage(body, &fwd)
		decodeMessage(body, &reply)
	})
}
