package forwards

import (
	"runtime"
	"testing"
)

// lengthBombs are frame bodies whose headers claim far more than the frame
// holds: each would have the decoder grow a buffer (or preallocate a
// slice or map) for ~4 GB that never comes.
var lengthBombs = map[string][]byte{
	"str32 value":     mustHex("81a46b696e64dbffffffff"),
	"str32 key":       mustHex("81dbffffffff"),
	"bin32 value":     mustHex("81a46b696e64c6ffffffff"),
	"ext32 value":     mustHex("81a46b696e64c9ffffffff01"),
	"array32 value":   mustHex("81a46b696e64ddffffffff"),
	"map32 value":     mustHex("81a46b696e64dfffffffff"),
	"map32 top level": mustHex("dfffffffff"),
	"str16 value":     mustHex("81a46b696e64daffff"),
	"unknown key":     mustHex("81a178dbffffffff"),
}

// Decoding a hostile frame costs about what the frame holds, however often
// it comes: before, every decode of a lying length left a pooled decoder
// with a megabyte more buffer than the last.
func TestLengthBombsStaySmall(t *testing.T) {
	const rounds = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range rounds {
		for name, body := range lengthBombs {
			var req listenRequest
			var resp listenResponse
			var fwd forwardRequest
			var reply forwardReply
			for _, msg := range []any{&req, &resp, &fwd, &reply} {
				if err := decodeMessage(body, msg); err == nil {
					t.Fatalf("%s decoded into %T", name, msg)
				}
			}
			if _, err := decodeKind(body); err == nil {
				t.Fatalf("%s: decodeKind succeeded", name)
			}
		}
	}
	runtime.ReadMemStats(&after)
	decodes := uint64(rounds * len(lengthBombs) * 5)
	if perDecode := (after.TotalAlloc - before.TotalAlloc) / decodes; perDecode > 4<<10 {
		t.Fatalf("a hostile frame of at most 12 bytes allocated %d bytes per decode", perDecode)
	}
}
