package forwards

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fowlBodies are msgpack bodies as Python's msgpack.packb writes them
// (the frames of TestFramesMatchFowl without their length prefix), and a
// few more with every kind of value a future fowl might add under a key
// we ignore.
var fowlBodies = []string{
	"83a46b696e64b0726571756573742d6c697374656e6572ab756e697175652d6e616d65a463686174ab6c697374656e2d706f7274c0",
	"83a46b696e64b0726571756573742d6c697374656e6572ab756e697175652d6e616d65a463686174ab6c697374656e2d706f7274cd22b8",
	"84a46b696e64b16c697374656e65722d726573706f6e7365ab756e697175652d6e616d65a463686174a96c697374656e696e67c3ac646573697265642d706f7274cd08ae",
	"81ab756e697175652d6e616d65a463686174",
	"82a9636f6e6e6563746564c2a6726561736f6eb4416761696e7374206c6f63616c20706f6c696379",
	// {"a": [1, -1, 1.5, b"x", {"b": None}], "c": 2**40, "d": -2**40, "e": ExtType(5, b"abc")}
	"84a1619501ffcb3ff8000000000000c4017881a162c0a163cf0000010000000000a164d3ffffff0000000000a165c70305616263",
}

func TestCheckMsgpackAcceptsFowlMessages(t *testing.T) {
	for _, h := range fowlBodies {
		body := mustHex(h)
		if err := checkMsgpack(body); err != nil {
			t.Errorf("%s: %v", h, err)
		}
		// Every truncated prefix is an error, never a shorter message.
		for n := range len(body) {
			if err := checkMsgpack(body[:n]); !errors.Is(err, errBadFrame) {
				t.Errorf("%s cut to %d bytes: %v", h, n, err)
			}
		}
		if err := checkMsgpack(append(body, 0xc0)); !errors.Is(err, errBadFrame) {
			t.Errorf("%s with a byte after it: %v", h, err)
		}
	}
}

func TestCheckMsgpackRefuses(t *testing.T) {
	deep := strings.Repeat("81a178", maxMsgpackDepth) + "c0"
	tooDeep := strings.Repeat("81a178", maxMsgpackDepth+1) + "c0"
	if err := checkMsgpack(mustHex(deep)); err != nil {
		t.Fatalf("%d nested maps: %v", maxMsgpackDepth, err)
	}
	tests := map[string]string{
		"nested too deep":          tooDeep,
		"not a map":                "93010203",
		"reserved byte":            "81a178c1",
		"array count beyond frame": "81a178dc0005c0c0c0",
		"map count beyond frame":   "81a178de0002c0c0",
		"fixext beyond frame":      "81a178d80501",
		"empty":                    "",
	}
	for name, body := range lengthBombs {
		tests[name] = hex.EncodeToString(body)
	}
	for name, h := range tests {
		if err := checkMsgpack(mustHex(h)); !errors.Is(err, errBadFrame) {
			t.Errorf("%s: %v, want errBadFrame", name, err)
		}
	}
}

// Whatever checkMsgpack lets through is one complete msgpack object to the
// library too, so the check and the decoder agree on where values end.
func FuzzCheckMsgpack(f *testing.F) {
	for _, h := range fowlBodies {
		f.Add(mustHex(h))
	}
	for _, body := range lengthBombs {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFrame || checkMsgpack(body) != nil {
			return
		}
		r := bytes.NewReader(body)
		if err := msgpack.NewDecoder(r).Skip(); err != nil || r.Len() != 0 {
			t.Fatalf("checkMsgpack accepted %x, which the library skips with %v leaving %d bytes", body, err, r.Len())
		}
	})
}
