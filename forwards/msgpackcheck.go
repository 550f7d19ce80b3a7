package forwards

import (
	"errors"
	"fmt"
)

// maxMsgpackDepth bounds how deeply a peer's frame may nest arrays and
// maps. fowl's messages are flat maps (depth 1); unknown keys are
// ignored, so a little room is left for a future fowl's nested values.
const maxMsgpackDepth = 8

// errMsgpackLength is a frame whose header claims more than it holds.
var errMsgpackLength = errors.New("a length exceeds the frame")

// checkMsgpack checks that body is exactly one msgpack map, that every
// length and element count in it fits in the bytes that remain, and that
// nothing nests deeper than maxMsgpackDepth. The msgpack library sizes
// its buffers, slices and maps from those headers before reading what
// they describe (and keeps pooled buffers grown for lengths that lie), so
// a frame must pass this before it is decoded: then nothing it makes the
// decoder allocate can exceed the frame's own size.
func checkMsgpack(body []byte) error {
	if len(body) == 0 || !isMap(body[0]) {
		return fmt.Errorf("%w: not a msgpack map", errBadFrame)
	}
	n, err := skipObject(body, 1)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadFrame, err)
	}
	if n != len(body) {
		return fmt.Errorf("%w: %d bytes after the message", errBadFrame, len(body)-n)
	}
	return nil
}

func isMap(b byte) bool { return b&0xf0 == 0x80 || b == 0xde || b == 0xdf }

// skipObject returns the size of the msgpack object at the start of b, at
// nesting depth depth.
func skipObject(b []byte, depth int) (int, error) {
	if len(b) == 0 {
		return 0, errMsgpackLength
	}
	tag := b[0]
	switch {
	case tag <= 0x7f || tag >= 0xe0: // positive and negative fixint
		return 1, nil
	case tag <= 0x8f: // fixmap
		return skipElements(b, 1, 2*int(tag&0x0f), depth)
	case tag <= 0x9f: // fixarray
		return skipElements(b, 1, int(tag&0x0f), depth)
	case tag <= 0xbf: // fixstr
		return skipBytes(b, 1, int(tag&0x1f))
	}
	switch tag {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return 1, nil
	case 0xcc, 0xd0: // uint8, int8
		return skipBytes(b, 1, 1)
	case 0xcd, 0xd1: // uint16, int16
		return skipBytes(b, 1, 2)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return skipBytes(b, 1, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return skipBytes(b, 1, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type, data
		return skipBytes(b, 1, 1+1<<(tag-0xd4))
	case 0xc4, 0xd9: // bin8, str8
		return skipSized(b, 1, 0)
	case 0xc5, 0xda: // bin16, str16
		return skipSized(b, 2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return skipSized(b, 4, 0)
	case 0xc7: // ext8: length, type, data
		return skipSized(b, 1, 1)
	case 0xc8: // ext16
		return skipSized(b, 2, 1)
	case 0xc9: // ext32
		return skipSized(b, 4, 1)
	case 0xdc: // array16
		return skipCounted(b, 2, 1, depth)
	case 0xdd: // array32
		return skipCounted(b, 4, 1, depth)
	case 0xde: // map16
		return skipCounted(b, 2, 2, depth)
	case 0xdf: // map32
		return skipCounted(b, 4, 2, depth)
	}
	return 0, fmt.Errorf("invalid msgpack byte 0x%02x", tag)
}

// readLength reads a big-endian length of size bytes after the tag.
func readLength(b []byte, size int) (int, error) {
	if len(b) < 1+size {
		return 0, errMsgpackLength
	}
	var n uint64
	for _, c := range b[1 : 1+size] {
		n = n<<8 | uint64(c)
	}
	// Compared in uint64, so that a 32-bit length cannot wrap an int.
	if n > uint64(len(b)) {
		return 0, errMsgpackLength
	}
	return int(n), nil
}

// skipSized skips a str, bin or ext: a length of size bytes, extra bytes
// (ext's type), then the data.
func skipSized(b []byte, size, extra int) (int, error) {
	n, err := readLength(b, size)
	if err != nil {
		return 0, err
	}
	return skipBytes(b, 1+size, extra+n)
}

// skipBytes skips a header of head bytes and n bytes of data.
func skipBytes(b []byte, head, n int) (int, error) {
	if n > len(b)-head {
		return 0, errMsgpackLength
	}
	return head + n, nil
}

// skipCounted skips an array or map: a count of size bytes, then
// count×perEntry objects.
func skipCounted(b []byte, size, perEntry, depth int) (int, error) {
	n, err := readLength(b, size)
	if err != nil {
		return 0, err
	}
	return skipElements(b, 1+size, perEntry*n, depth)
}

// skipElements skips a container's header of head bytes and its n
// objects; each takes at least one byte, so a count beyond what remains
// is refused before the decoder can preallocate for it.
func skipElements(b []byte, head, n, depth int) (int, error) {
	if depth > maxMsgpackDepth {
		return 0, fmt.Errorf("nested deeper than %d", maxMsgpackDepth)
	}
	if n > len(b)-head {
		return 0, errMsgpackLength
	}
	off := head
	for range n {
		size, err := skipObject(b[off:], depth+1)
		if err != nil {
			return 0, err
		}
		off += size
	}
	return off, nil
}
