package transfer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// Frame layout (PROTOCOL.md has the whole protocol):
//
//	type u8 ‖ length u32 big-endian ‖ body[length]
//
// Inside bodies, integers are big-endian u8 or u64 and a string is
// u16 length ‖ UTF-8 bytes. Every body must be consumed exactly: trailing
// bytes are an error, so each valid frame has one encoding.
const (
	typeOffer  = 1
	typeAccept = 2
	typeRefuse = 3
	typeEntry  = 4
	typeData   = 5
	typeDone   = 6
	typeAck    = 7
	typeCancel = 8
	// typeRefuseKind is REFUSE with a RefusalKind; sent only to a peer
	// whose app_versions say it reads it (session: FeatureFilesRefusals),
	// as an older gander fails on a type it does not know.
	typeRefuseKind = 9
)

// Limits on what the peer may send, checked before anything is allocated.
const (
	frameHeaderLen = 5
	maxData        = 256 << 10 // DATA payload; also the size of read buffers
	maxControl     = 8 << 10   // every other body: a path plus a few fields
	maxNameLen     = 255       // bytes in one name element, as on most file systems
	maxPathLen     = 4096      // bytes in a directory entry's path
	maxReasonLen   = 1024      // bytes in a refusal or cancel reason
	maxDigestLen   = 64
	maxCount       = 1 << 30 // files or directories in one offer
)

// message is one decoded frame; the set is closed.
type message interface{ frameType() byte }

type (
	offerMsg struct {
		Kind        Kind
		Size        int64
		Files, Dirs int
		DigestAlg   string
		Name        string
	}
	acceptMsg struct{}
	refuseMsg struct{ Reason string }
	// refuseKindMsg is REFUSE saying who or what refused.
	refuseKindMsg struct {
		Kind   RefusalKind
		Reason string
	}
	entryMsg struct {
		Dir  bool
		Size int64 // 0 for a directory
		Path string
	}
	// dataMsg aliases the buffer it was read into.
	dataMsg   []byte
	doneMsg   struct{ Digest []byte }
	ackMsg    struct{}
	cancelMsg struct{ Reason string }
)

func (offerMsg) frameType() byte  { return typeOffer }
func (acceptMsg) frameType() byte { return typeAccept }
func (refuseMsg) frameType() byte { return typeRefuse }
func (refuseKindMsg) frameType() byte {
	return typeRefuseKind
}
func (entryMsg) frameType() byte  { return typeEntry }
func (dataMsg) frameType() byte   { return typeData }
func (doneMsg) frameType() byte   { return typeDone }
func (ackMsg) frameType() byte    { return typeAck }
func (cancelMsg) frameType() byte { return typeCancel }

// appendHeader appends a frame header announcing n body bytes.
func appendHeader(b []byte, typ byte, n int) []byte {
	return binary.BigEndian.AppendUint32(append(b, typ), uint32(n))
}

// appendFrame appends m's frame to b.
func appendFrame(b []byte, m message) []byte {
	start := len(b)
	b = appendHeader(b, m.frameType(), 0)
	switch m := m.(type) {
	case offerMsg:
		b = append(b, byte(m.Kind))
		b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
		b = binary.BigEndian.AppendUint64(b, uint64(m.Files))
		b = binary.BigEndian.AppendUint64(b, uint64(m.Dirs))
		b = appendString(b, m.DigestAlg)
		b = appendString(b, m.Name)
	case refuseMsg:
		b = appendString(b, m.Reason)
	case refuseKindMsg:
		b = append(b, byte(m.Kind))
		b = appendString(b, m.Reason)
	case entryMsg:
		b = append(b, byte(entryKind(m.Dir)))
		b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
		b = appendString(b, m.Path)
	case dataMsg:
		b = append(b, m...)
	case doneMsg:
		b = append(b, m.Digest...)
	case cancelMsg:
		b = appendString(b, m.Reason)
	case acceptMsg, ackMsg:
	}
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-frameHeaderLen))
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

func entryKind(dir bool) Kind {
	if dir {
		return KindDirectory
	}
	return KindFile
}

// readMessage reads one frame from r into buf (at least maxData bytes) and
// decodes it. A DATA message aliases buf. The length is checked against
// the type's limit before the body is read.
func readMessage(r *bufio.Reader, buf []byte) (message, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, protocolErrorf("truncated frame header")
		}
		return nil, err // io.EOF: the peer closed between frames
	}
	typ, n := h[0], binary.BigEndian.Uint32(h[1:])
	limit := uint32(maxControl)
	if typ == typeData {
		limit = maxData
	}
	if n > limit {
		return nil, protocolErrorf("frame type %d of %d bytes exceeds %d", typ, n, limit)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, protocolErrorf("truncated frame body")
		}
		return nil, err
	}
	return decodeBody(typ, body)
}

// decodeBody decodes one frame body. Only DATA keeps a reference to body.
func decodeBody(typ byte, body []byte) (message, error) {
	d := decoder{b: body}
	var m message
	switch typ {
	case typeOffer:
		o := offerMsg{Kind: Kind(d.u8())}
		o.Size = d.size()
		o.Files = d.count()
		o.Dirs = d.count()
		o.DigestAlg = d.str(maxNameLen)
		o.Name = d.str(maxNameLen)
		if o.Kind != KindFile && o.Kind != KindDirectory {
			d.fail("unknown kind %d", o.Kind)
		}
		m = o
	case typeAccept:
		m = acceptMsg{}
	case typeRefuse:
		m = refuseMsg{Reason: d.str(maxReasonLen)}
	case typeRefuseKind:
		// Any kind decodes (Send reads one it does not know as
		// unspecified: a newer peer may tell more, never less).
		m = refuseKindMsg{Kind: RefusalKind(d.u8()), Reason: d.str(maxReasonLen)}
	case typeEntry:
		k := Kind(d.u8())
		e := entryMsg{Dir: k == KindDirectory, Size: d.size(), Path: d.str(maxPathLen)}
		switch {
		case k != KindFile && k != KindDirectory:
			d.fail("unknown entry kind %d", k)
		case e.Dir && e.Size != 0:
			d.fail("directory entry with a size")
		}
		m = e
	case typeData:
		if len(body) == 0 {
			d.fail("empty DATA")
		}
		m, d.b = dataMsg(body), nil
	case typeDone:
		if len(body) == 0 || len(body) > maxDigestLen {
			d.fail("digest of %d bytes", len(body))
		}
		m, d.b = doneMsg{Digest: append([]byte(nil), body...)}, nil
	case typeAck:
		m = ackMsg{}
	case typeCancel:
		m = cancelMsg{Reason: d.str(maxReasonLen)}
	default:
		return nil, protocolErrorf("unknown frame type %d", typ)
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

// decoder reads fields from a body; the first failure sticks and later
// reads return zero values, so decodeBody checks once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = protocolErrorf(format, args...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated body")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) size() int64 {
	v := d.u64()
	if v > math.MaxInt64 {
		d.fail("size %d out of range", v)
		return 0
	}
	return int64(v)
}

func (d *decoder) count() int {
	v := d.u64()
	if v > maxCount {
		d.fail("count %d out of range", v)
		return 0
	}
	return int(v)
}

func (d *decoder) str(limit int) string {
	n := 0
	if v := d.take(2); v != nil {
		n = int(binary.BigEndian.Uint16(v))
	}
	if n > limit {
		d.fail("string of %d bytes exceeds %d", n, limit)
		return ""
	}
	v := d.take(n)
	if !utf8.Valid(v) {
		d.fail("string is not UTF-8")
		return ""
	}
	return string(v)
}

// truncateReason shortens a reason to what the peer accepts, on a rune
// boundary.
func truncateReason(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxReasonLen {
		return s
	}
	s = s[:maxReasonLen]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...)}
}
