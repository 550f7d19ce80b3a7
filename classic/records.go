package classic

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
)

// Records are Transit's encrypted records: each is a 4-byte big-endian
// length, then a 24-byte nonce (the sender's record counter, big-endian)
// and the secretbox of the record. Each direction has its own key and
// counter; a record out of order is an attack or a bug, and ends the
// stream.

const (
	nonceSize = 24
	// MaxRecordSize bounds a record we accept (length field included
	// in nothing: nonce, box and overhead): the reference sends 16 KiB,
	// wormhole-william 16 KiB, we 256 KiB. Past it the stream is refused
	// before anything is allocated.
	MaxRecordSize = 4 << 20
	// sendRecordSize is the plaintext we put in one record: large enough
	// that the per-record cost (a syscall, a length) disappears. The
	// reference's receiver (transit.py) and wormhole-william's take any
	// length the 4-byte field holds. 1 MiB records cut gander → gander's
	// CPU a byte by 5-9 % (BenchmarkDataPath), but the reference's
	// receiver copies its whole buffer again at every 64 KiB read a
	// record spans (bytes +=): about 2.5 copies a byte at 256 KiB, 8 at
	// 1 MiB.
	sendRecordSize = 256 << 10
)

var (
	// ErrRecordTooLarge is a peer announcing a record over MaxRecordSize.
	ErrRecordTooLarge = fmt.Errorf("transit: record larger than %d bytes", MaxRecordSize)
	// ErrBadRecord is a record that does not open with the key: corrupted,
	// forged, or out of order.
	ErrBadRecord = errors.New("transit: record failed authentication (corrupted or out of order)")
)

// sealer encrypts records for one direction.
type sealer struct {
	key   [32]byte
	nonce uint64 // the next record's counter (the low 8 of the 24 bytes)
	buf   []byte
}

// seal returns the framed record for plaintext, valid until the next call.
func (s *sealer) seal(plaintext []byte) []byte {
	var nonce [nonceSize]byte
	binary.BigEndian.PutUint64(nonce[nonceSize-8:], s.nonce)
	s.nonce++
	need := 4 + nonceSize + len(plaintext) + secretbox.Overhead
	if cap(s.buf) < need {
		s.buf = make([]byte, 0, need)
	}
	out := s.buf[:4+nonceSize]
	binary.BigEndian.PutUint32(out, uint32(need-4))
	copy(out[4:], nonce[:])
	out = secretbox.Seal(out, plaintext, &nonce, &s.key)
	s.buf = out[:0]
	return out
}

// opener decrypts one direction's records and checks their order.
type opener struct {
	key   [32]byte
	nonce uint64
	buf   []byte
	out   []byte
}

// open reads the next record from r and returns its plaintext, valid
// until the next call; io.EOF only at a record boundary.
func (o *opener) open(r io.Reader) ([]byte, error) {
	plain, err := o.openInto(r, o.out)
	if err == nil {
		o.out = plain[:0]
	}
	return plain, err
}

// openInto is open with the plaintext appended to dst[:0], which the
// caller owns.
func (o *opener) openInto(r io.Reader, dst []byte) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenBuf[:])
	if n > MaxRecordSize {
		return nil, ErrRecordTooLarge
	}
	if n < nonceSize+secretbox.Overhead {
		return nil, ErrBadRecord
	}
	if cap(o.buf) < int(n) {
		o.buf = make([]byte, n)
	}
	rec := o.buf[:n]
	if _, err := io.ReadFull(r, rec); err != nil {
		return nil, noEOF(err)
	}
	var want [nonceSize]byte
	binary.BigEndian.PutUint64(want[nonceSize-8:], o.nonce)
	if [nonceSize]byte(rec[:nonceSize]) != want {
		return nil, ErrBadRecord
	}
	plain, ok := secretbox.Open(dst[:0], rec[nonceSize:], &want, &o.key)
	if !ok {
		return nil, ErrBadRecord
	}
	o.nonce++
	return plain, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// recordConn is a selected Transit connection in the records phase.
type recordConn struct {
	conn io.ReadWriteCloser
	r    *bufio.Reader
	s    sealer
	o    opener
	via  string
}

func (c *recordConn) writeRecord(p []byte) error {
	_, err := c.conn.Write(c.s.seal(p))
	return err
}

func (c *recordConn) readRecord() ([]byte, error) { return c.o.open(c.r) }

// Write sends p as records of at most sendRecordSize: the zip writer and
// io.Copy write through it.
func (c *recordConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n := min(len(p)-done, sendRecordSize)
		if err := c.writeRecord(p[done : done+n]); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}
