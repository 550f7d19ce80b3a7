package wormhole

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"

	"golang.org/x/crypto/hkdf"
	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/text/unicode/norm"
)

// The key schedule below mirrors magic-wormhole's util.HKDF/derive_key and
// _key.derive_phase_key: HKDF-SHA256 with an empty salt and the purpose as
// info. Strings used as key material are NFC-normalised UTF-8 (to_bytes).

// DeriveKey derives length bytes from the wormhole's shared key for purpose.
// It is the reference's derive_key(key, purpose, length).
func DeriveKey(key []byte, purpose string, length int) []byte {
	return hkdfBytes(key, []byte(norm.NFC.String(purpose)), length)
}

func hkdfBytes(secret, info []byte, length int) []byte {
	out := make([]byte, length)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, info), out); err != nil {
		// HKDF-SHA256 only fails past 255*32 bytes, which no caller asks for.
		panic("wormhole: hkdf: " + err.Error())
	}
	return out
}

// phaseKey is the secretbox key for one message: the sender's side and the
// phase name are hashed (raw digests, not hex) into the HKDF purpose.
func phaseKey(key []byte, side, phase string) *[32]byte {
	sideHash := sha256.Sum256([]byte(side))
	phaseHash := sha256.Sum256([]byte(phase))
	info := make([]byte, 0, len("wormhole:phase:")+64)
	info = append(info, "wormhole:phase:"...)
	info = append(info, sideHash[:]...)
	info = append(info, phaseHash[:]...)
	var k [32]byte
	copy(k[:], hkdfBytes(key, info, 32))
	return &k
}

const (
	nonceSize   = 24
	boxOverhead = nonceSize + secretbox.Overhead
)

// errDecrypt means a message did not authenticate: under the phase key the
// peer's message was not made with the same shared key.
var errDecrypt = errors.New("message failed to decrypt")

// sealWithNonce returns nonce ‖ secretbox(plaintext), PyNaCl's layout.
func sealWithNonce(key *[32]byte, nonce *[nonceSize]byte, plaintext []byte) []byte {
	out := make([]byte, nonceSize, nonceSize+secretbox.Overhead+len(plaintext))
	copy(out, nonce[:])
	return secretbox.Seal(out, plaintext, nonce, key)
}

// seal encrypts plaintext under key with a fresh random nonce.
func seal(key *[32]byte, plaintext []byte) []byte {
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic("wormhole: crypto/rand: " + err.Error())
	}
	return sealWithNonce(key, &nonce, plaintext)
}

// open reverses seal.
func open(key *[32]byte, box []byte) ([]byte, error) {
	if len(box) < boxOverhead {
		return nil, errDecrypt
	}
	var nonce [nonceSize]byte
	copy(nonce[:], box[:nonceSize])
	plain, ok := secretbox.Open(nil, box[nonceSize:], &nonce, key)
	if !ok {
		return nil, errDecrypt
	}
	return plain, nil
}
