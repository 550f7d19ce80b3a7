package dilation

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// L3 records are the plaintext of one Noise-decrypted frame: a type byte
// and a fixed layout per type, as _dilation/connection.py encodes them.
//
//	0x00 KCM    (nothing)                      key confirmation
//	0x01 PING   ping_id[4]
//	0x02 PONG   ping_id[4]                     copied from the PING
//	0x03 OPEN   scid u32 BE, seqnum u32 BE, subprotocol name (UTF-8, rest)
//	0x04 DATA   scid u32 BE, seqnum u32 BE, payload (rest)
//	0x05 CLOSE  scid u32 BE, seqnum u32 BE
//	0x06 ACK    seqnum u32 BE                  acknowledges one OPEN/DATA/CLOSE
//	0x07 WINDOW  scid u32 BE, limit u64 BE     gander-flow-v1 only (see flow.go)
//	0x08 BLOCKED scid u32 BE, limit u64 BE     gander-flow-v1 only: waiting at limit
//
// Any other type byte is a protocol error, as in the reference, and so are
// WINDOW and BLOCKED unless both peers announced gander-flow-v1.

const (
	typeKCM   byte = 0x00
	typePing  byte = 0x01
	typePong  byte = 0x02
	typeOpen  byte = 0x03
	typeData  byte = 0x04
	typeClose byte = 0x05
	typeAck   byte = 0x06
	// typeWindow is gander's own: a receiver's credit for one subchannel,
	// sent only to a peer that announced flowAbility.
	typeWindow byte = 0x07
	// typeBlocked, gander's own as well, says a sender has data for a
	// subchannel but no credit left (QUIC's STREAM_DATA_BLOCKED): the
	// window is too small for the path, which the receiver tunes by.
	typeBlocked byte = 0x08
)

// record is one decoded L3 record.
type record interface{ isRecord() }

type (
	kcmRecord  struct{}
	pingRecord struct{ id [4]byte }
	pongRecord struct{ id [4]byte }
	openRecord struct {
		scid, seq   uint32
		subprotocol string
	}
	dataRecord struct {
		scid, seq uint32
		payload   []byte
		// wire, when set, is the record's whole encoding with payload at
		// its tail: the sender builds it once so that sealing needs no
		// further copy (see prepareData).
		wire []byte
		// buf, when set, is the pooled buffer under wire or payload, for
		// whoever is done with the record last to putBuffer.
		buf *[]byte
	}
	closeRecord struct{ scid, seq uint32 }
	ackRecord   struct{ seq uint32 }
	// windowRecord lets the peer send payload on scid up to limit bytes in
	// all (an absolute offset, so that a duplicate or a stale one is
	// harmless and a lost one is replaced by the next).
	windowRecord struct {
		scid  uint32
		limit uint64
	}
	// blockedRecord says the sender waits for credit beyond limit.
	blockedRecord struct {
		scid  uint32
		limit uint64
	}
)

func (kcmRecord) isRecord()     {}
func (pingRecord) isRecord()    {}
func (pongRecord) isRecord()    {}
func (openRecord) isRecord()    {}
func (dataRecord) isRecord()    {}
func (closeRecord) isRecord()   {}
func (ackRecord) isRecord()     {}
func (windowRecord) isRecord()  {}
func (blockedRecord) isRecord() {}

// errBadRecord wraps every record decoding failure.
var errBadRecord = errors.New("malformed record")

// parseRecord decodes one record. A DATA payload aliases b.
func parseRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", errBadRecord)
	}
	body := b[1:]
	need := func(n int, exact bool) error {
		if len(body) < n || (exact && len(body) != n) {
			return fmt.Errorf("%w: type %#02x with %d bytes", errBadRecord, b[0], len(body))
		}
		return nil
	}
	switch b[0] {
	case typeKCM:
		if err := need(0, true); err != nil {
			return nil, err
		}
		return kcmRecord{}, nil
	case typePing, typePong:
		if err := need(4, true); err != nil {
			return nil, err
		}
		var id [4]byte
		copy(id[:], body)
		if b[0] == typePing {
			return pingRecord{id}, nil
		}
		return pongRecord{id}, nil
	case typeOpen:
		if err := need(8, false); err != nil {
			return nil, err
		}
		name := body[8:]
		if !utf8.Valid(name) {
			return nil, fmt.Errorf("%w: subprotocol name is not UTF-8", errBadRecord)
		}
		return openRecord{be32(body), be32(body[4:]), string(name)}, nil
	case typeData:
		if err := need(8, false); err != nil {
			return nil, err
		}
		return dataRecord{scid: be32(body), seq: be32(body[4:]), payload: body[8:]}, nil
	case typeClose:
		if err := need(8, true); err != nil {
			return nil, err
		}
		return closeRecord{be32(body), be32(body[4:])}, nil
	case typeAck:
		if err := need(4, true); err != nil {
			return nil, err
		}
		return ackRecord{be32(body)}, nil
	case typeWindow:
		if err := need(12, true); err != nil {
			return nil, err
		}
		return windowRecord{be32(body), binary.BigEndian.Uint64(body[4:])}, nil
	case typeBlocked:
		if err := need(12, true); err != nil {
			return nil, err
		}
		return blockedRecord{be32(body), binary.BigEndian.Uint64(body[4:])}, nil
	default:
		return nil, fmt.Errorf("%w: unknown type %#02x", errBadRecord, b[0])
	}
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// appendRecord appends the encoding of r to dst.
func appendRecord(dst []byte, r record) []byte {
	be := binary.BigEndian
	switch r := r.(type) {
	case kcmRecord:
		return append(dst, typeKCM)
	case pingRecord:
		return append(append(dst, typePing), r.id[:]...)
	case pongRecord:
		return append(append(dst, typePong), r.id[:]...)
	case openRecord:
		dst = be.AppendUint32(be.AppendUint32(append(dst, typeOpen), r.scid), r.seq)
		return append(dst, r.subprotocol...)
	case dataRecord:
		dst = be.AppendUint32(be.AppendUint32(append(dst, typeData), r.scid), r.seq)
		return append(dst, r.payload...)
	case closeRecord:
		return be.AppendUint32(be.AppendUint32(append(dst, typeClose), r.scid), r.seq)
	case ackRecord:
		return be.AppendUint32(append(dst, typeAck), r.seq)
	case windowRecord:
		return be.AppendUint64(be.AppendUint32(append(dst, typeWindow), r.scid), r.limit)
	case blockedRecord:
		return be.AppendUint64(be.AppendUint32(append(dst, typeBlocked), r.scid), r.limit)
	}
	panic(fmt.Sprintf("dilation: appendRecord(%T)", r))
}

// prepareData copies payload into a buffer with room for the DATA header.
func prepareData(scid uint32, payload []byte) dataRecord {
	d := newData(scid, len(payload))
	copy(d.payload, payload)
	return d
}

// newData returns a DATA record with room for n bytes of payload, which
// the caller fills in (and may shorten with truncate).
func newData(scid uint32, n int) dataRecord {
	buf := getBuffer(9 + n)
	wire := (*buf)[:9+n]
	return dataRecord{scid: scid, payload: wire[9:], wire: wire, buf: buf}
}

// truncate keeps the first n bytes of the payload.
func (r dataRecord) truncate(n int) dataRecord {
	r.payload, r.wire = r.payload[:n], r.wire[:9+n]
	return r
}

// encode fills in the header of a prepared record once its sequence
// number is known; the manager does it before any writer sees the record.
func (r dataRecord) encode() {
	r.wire[0] = typeData
	binary.BigEndian.PutUint32(r.wire[1:], r.scid)
	binary.BigEndian.PutUint32(r.wire[5:], r.seq)
}

// recordSize is the encoded length of r.
func recordSize(r record) int {
	switch r := r.(type) {
	case kcmRecord:
		return 1
	case pingRecord, pongRecord, ackRecord:
		return 5
	case openRecord:
		return 9 + len(r.subprotocol)
	case dataRecord:
		return 9 + len(r.payload)
	case closeRecord:
		return 9
	case windowRecord, blockedRecord:
		return 13
	}
	panic(fmt.Sprintf("dilation: recordSize(%T)", r))
}

// Buffers of up to one Noise message are recycled: a sender's copy of a
// DATA payload is kept until the peer acknowledges it, and a received
// frame until its subchannel's reader has consumed it, so a busy
// connection would otherwise allocate (and zero) every byte it moves.
// The free list is bounded, unlike a sync.Pool, so that a burst (a
// thousand subchannels at once) leaves no more than maxFreeBuffers idle;
// buffers too small to be worth recycling are allocated as usual.
const (
	pooledSize     = noiseMaxCiphertext
	pooledMin      = 1 << 10
	maxFreeBuffers = 256 // 16 MiB
)

var freeBuffers = make(chan *[]byte, maxFreeBuffers)

// getBuffer returns a buffer of at least n bytes.
func getBuffer(n int) *[]byte {
	if n >= pooledMin && n <= pooledSize {
		select {
		case b := <-freeBuffers:
			return b
		default:
			n = pooledSize
		}
	}
	b := make([]byte, n)
	return &b
}

// putBuffer recycles b, which nothing may use afterwards. It ignores nil
// and buffers of other sizes than the recycled ones.
func putBuffer(b *[]byte) {
	if b == nil || cap(*b) != pooledSize {
		return
	}
	select {
	case freeBuffers <- b:
	default:
	}
}
