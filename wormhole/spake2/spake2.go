// Package spake2 implements the symmetric mode of SPAKE2 over the Ed25519
// prime-order group, byte-compatible with python-spake2 0.9's
// SPAKE2_Symmetric with its default parameters. That is the PAKE magic
// wormhole runs on the wormhole code; both sides play the same role.
//
// Each side picks a random scalar x and sends 'S' ‖ encode(x·B + pw·S). On
// receiving the peer's element Y it computes K = x·(Y − pw·S), and the key is
// SHA256(SHA256(pw) ‖ SHA256(idSymmetric) ‖ min(X, Y) ‖ max(X, Y) ‖ encode(K)),
// where X and Y are the two 32-byte element encodings.
package spake2

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

var (
	// ErrOffSides means the peer's message carries an asymmetric side
	// byte ('A' or 'B'): it is not running the symmetric mode.
	ErrOffSides = errors.New("spake2: message is from an asymmetric (A/B) side")
	// ErrReflection means the peer's element is our own: someone echoed
	// our message back to us.
	ErrReflection = errors.New("spake2: our own message was reflected back")
	// ErrBadMessage means the peer's message is malformed: wrong length,
	// unknown side byte, or an element that is not on the curve, is the
	// identity, or lies outside the prime-order subgroup.
	ErrBadMessage = errors.New("spake2: bad message")

	errFinished = errors.New("spake2: Finish called twice")
)

const (
	sideSymmetric = 'S'
	elementSize   = 32
	messageSize   = 1 + elementSize
)

// blindingS is python-spake2's arbitrary_element(b"symmetric"), the point
// both sides blind with. Nobody knows its discrete log, which SPAKE2 needs.
// TestBlindingS re-derives it with the python algorithm.
var blindingS = mustPoint("6f00dae87c1be1a73b5922ef431cd8f57879569c222d22b1cd71e8546ab8e6f1")

// lMinusOne is L−1 (little-endian), for the subgroup check: scalars live
// mod L, so [L]P cannot be computed directly, but [L−1]P = −P exactly when
// [L]P is the identity.
var lMinusOne = mustScalar("ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")

// Symmetric is one side of a SPAKE2 symmetric-mode exchange.
type Symmetric struct {
	pwHash, idHash [32]byte // the transcript's first two fields
	pw             *edwards25519.Scalar
	x              *edwards25519.Scalar
	elem           *edwards25519.Point // x·B + pw·S, kept for the reflection check
	msg            []byte              // 'S' ‖ encode(elem)
	finished       bool
}

// NewSymmetric starts an exchange for password and idSymmetric (magic
// wormhole passes the NFC-normalised UTF-8 code and appid). It reads 64
// bytes from random (crypto/rand if nil) for the secret scalar.
func NewSymmetric(password, idSymmetric []byte, random io.Reader) (*Symmetric, error) {
	if random == nil {
		random = rand.Reader
	}
	// python-spake2 reads 64 bytes and reduces them, big-endian, mod L.
	var seed [64]byte
	if _, err := io.ReadFull(random, seed[:]); err != nil {
		return nil, fmt.Errorf("spake2: reading random scalar: %w", err)
	}
	s := &Symmetric{
		pwHash: sha256.Sum256(password),
		idHash: sha256.Sum256(idSymmetric),
		pw:     passwordScalar(password),
		x:      scalarFromBigEndian(seed[:]),
	}
	s.elem = new(edwards25519.Point).Add(
		new(edwards25519.Point).ScalarBaseMult(s.x),
		new(edwards25519.Point).ScalarMult(s.pw, blindingS))
	s.msg = append([]byte{sideSymmetric}, s.elem.Bytes()...)
	return s, nil
}

// Message returns the 33-byte outbound message: 'S' ‖ element.
func (s *Symmetric) Message() []byte {
	return bytes.Clone(s.msg)
}

// Finish takes the peer's message and returns the 32-byte shared key. It
// may be called only once, even if it fails, as in python-spake2: retrying
// with other messages would help an attacker probe the password.
func (s *Symmetric) Finish(inbound []byte) ([]byte, error) {
	key, _, err := s.FinishCompat(inbound)
	return key, err
}

// FinishCompat is Finish that also returns the key gospake2 0.2.1 derives
// from the same exchange when that differs from the reference's, and nil
// otherwise (255 exchanges in 256). gospake2 is the SPAKE2 of
// wormhole-william (Debian's 1.0.6 is built with 0.2.1): it encodes an
// element with big.Int.Bytes, which drops the zero bytes at the top, and
// sizes every field of its transcript by the encoding of K. So when K's
// encoding ends in a zero byte, it hashes both messages and K cut short to
// that length and its key disagrees with python's and ours. Both keys come
// from the same K: holding one proves knowledge of the password as much as
// the other, so accepting either gives an attacker no extra guess.
func (s *Symmetric) FinishCompat(inbound []byte) (key, gospake2Key []byte, err error) {
	if s.finished {
		return nil, nil, errFinished
	}
	s.finished = true
	x := s.x
	s.x = nil

	// Check the side byte before the length, as python does.
	if len(inbound) == 0 {
		return nil, nil, fmt.Errorf("%w: empty", ErrBadMessage)
	}
	switch inbound[0] {
	case sideSymmetric:
	case 'A', 'B':
		return nil, nil, fmt.Errorf("%w: got side %q", ErrOffSides, inbound[0])
	default:
		return nil, nil, fmt.Errorf("%w: unknown side byte 0x%02x", ErrBadMessage, inbound[0])
	}
	if len(inbound) != messageSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadMessage, len(inbound), messageSize)
	}
	peerBytes := inbound[1:]
	peer, err := new(edwards25519.Point).SetBytes(peerBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: element not on the curve", ErrBadMessage)
	}
	// python rejects only the canonical identity encoding; we reject all
	// three. Every other point of the prime-order subgroup has only its
	// canonical encoding, so what we accept is always canonical.
	if peer.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, nil, fmt.Errorf("%w: element is the identity", ErrBadMessage)
	}
	if !inPrimeOrderSubgroup(peer) {
		return nil, nil, fmt.Errorf("%w: element not in the prime-order subgroup", ErrBadMessage)
	}
	if peer.Equal(s.elem) == 1 {
		return nil, nil, ErrReflection
	}

	k := new(edwards25519.Point).Subtract(peer, new(edwards25519.Point).ScalarMult(s.pw, blindingS))
	k.ScalarMult(x, k)

	// Neither side knows which one is "first", so the two elements are
	// hashed in byte order. The side byte is not part of the transcript.
	first, second := s.msg[1:], peerBytes
	if bytes.Compare(first, second) > 0 {
		first, second = second, first
	}
	kBytes := k.Bytes()
	key = s.transcriptHash(first, second, kBytes)
	if n := len(bytes.TrimRight(kBytes, "\x00")); n < elementSize {
		// gospake2 orders its own message, which it may hold shortened the
		// same way, against ours: only zeros are dropped, so the order is
		// the same. Each field is cut to K's length (copy into a shorter
		// slot), a shorter message padded back with zeros.
		gospake2Key = s.transcriptHash(first[:n], second[:n], kBytes[:n])
	}
	return key, gospake2Key, nil
}

// transcriptHash is SHA256(SHA256(pw) ‖ SHA256(idSymmetric) ‖ first ‖
// second ‖ k).
func (s *Symmetric) transcriptHash(first, second, k []byte) []byte {
	h := sha256.New()
	h.Write(s.pwHash[:])
	h.Write(s.idHash[:])
	h.Write(first)
	h.Write(second)
	h.Write(k)
	return h.Sum(nil)
}

// passwordScalar is python-spake2's password_to_scalar for Ed25519: 48
// bytes of HKDF-SHA256(password, salt "", info "SPAKE2 pw"), read as a
// big-endian integer mod L. The extra 16 bytes make the reduction unbiased.
func passwordScalar(password []byte) *edwards25519.Scalar {
	wide, err := hkdf.Key(sha256.New, password, nil, "SPAKE2 pw", 48)
	if err != nil {
		// crypto/hkdf fails only for lengths past 255*32 bytes.
		panic("spake2: hkdf: " + err.Error())
	}
	return scalarFromBigEndian(wide)
}

// scalarFromBigEndian reduces a big-endian integer of up to 64 bytes mod L,
// which is how python-spake2 turns bytes into scalars (int(hexlify(b), 16) % L).
func scalarFromBigEndian(b []byte) *edwards25519.Scalar {
	var le [64]byte
	for i, c := range b {
		le[len(b)-1-i] = c
	}
	// SetUniformBytes only fails when its input is not 64 bytes.
	s, _ := edwards25519.NewScalar().SetUniformBytes(le[:])
	return s
}

// inPrimeOrderSubgroup reports whether [L]P is the identity, which is
// python-spake2's check: it rejects the small-order points and every point
// with a small-order component.
func inPrimeOrderSubgroup(p *edwards25519.Point) bool {
	q := new(edwards25519.Point).ScalarMult(lMinusOne, p)
	return q.Equal(new(edwards25519.Point).Negate(p)) == 1
}

func mustPoint(h string) *edwards25519.Point {
	b, _ := hex.DecodeString(h)
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		panic(err)
	}
	return p
}

func mustScalar(h string) *edwards25519.Scalar {
	b, _ := hex.DecodeString(h)
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b)
	if err != nil {
		panic(err)
	}
	return s
}
