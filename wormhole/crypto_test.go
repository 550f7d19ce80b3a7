package wormhole

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// keyVectors is testdata/key_vectors.json, written by
// testdata/gen_key_vectors.py from magic-wormhole 0.24.0 and PyNaCl.
type keyVectors struct {
	HKDF []struct {
		SKM, Info, Out string
	}
	DeriveKey []struct {
		Key, Purpose, Out string
		Length            int
	} `json:"derive_key"`
	PhaseKey []struct {
		Key, Side, Phase, Out string
	} `json:"phase_key"`
	Seal []struct {
		Key, Nonce, Plaintext, Box string
	}
	RelayToken struct {
		DilationKey string `json:"dilation_key"`
		Out         string
	} `json:"relay_token"`
}

func loadKeyVectors(t *testing.T) *keyVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/key_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v keyVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.HKDF) == 0 || len(v.DeriveKey) == 0 || len(v.PhaseKey) == 0 || len(v.Seal) == 0 {
		t.Fatal("key_vectors.json is missing cases")
	}
	return &v
}

func kvHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func kvKey(t *testing.T, s string) *[32]byte {
	t.Helper()
	b := kvHex(t, s)
	if len(b) != 32 {
		t.Fatalf("key %s is %d bytes", s, len(b))
	}
	return (*[32]byte)(b)
}

func kvNonce(t *testing.T, s string) *[nonceSize]byte {
	t.Helper()
	b := kvHex(t, s)
	if len(b) != nonceSize {
		t.Fatalf("nonce %s is %d bytes", s, len(b))
	}
	return (*[nonceSize]byte)(b)
}

// TestUpstreamKeys holds magic-wormhole's own test_keys.py answers, kept out
// of the generated file.
func TestUpstreamKeys(t *testing.T) {
	main := kvHex(t, "588ba9eef353778b074413a0140205d90d7479e36e0dd4ee35bb729d26131ef1")
	derive := []struct {
		purpose string
		length  int
		want    string
	}{
		{"purpose1", 32, "835b5df80ce9ca46908e8524fb308649122cfbcefbeaa7e65061c6ef08ee1b2a"},
		{"purpose2", 10, "f2238e84315b47eb6279"},
	}
	for _, tt := range derive {
		if got := hex.EncodeToString(DeriveKey(main, tt.purpose, tt.length)); got != tt.want {
			t.Errorf("DeriveKey(%q, %d) = %s, want %s", tt.purpose, tt.length, got, tt.want)
		}
	}
	phase := []struct{ side, phase, want string }{
		{"side1", "phase1", "3af6a61d1a111225cc8968c6ca6265efe892065c3ab46de79dda21306b062990"},
		{"side1", "phase2", "88a1dd12182d989ff498022a9656d1e2806f17328d8bf5d8d0c9753e4381a752"},
		{"side2", "phase1", "a306627b436ec23bdae3af8fa90c9ac927780d86be1831003e7f617c518ea689"},
		{"side2", "phase2", "bf99e3e16420f2dad33f9b1ccb0be1462b253d639dacdb50ed9496fa528d8758"},
	}
	for _, tt := range phase {
		if got := hex.EncodeToString(phaseKey(main, tt.side, tt.phase)[:]); got != tt.want {
			t.Errorf("phaseKey(%q, %q) = %s, want %s", tt.side, tt.phase, got, tt.want)
		}
	}

	key := kvKey(t, "ddc543ef8e4629a603d39dd0307a51bb1e7adb9cb259f6b085c91d0842a18679")
	nonce := kvNonce(t, "2d5e43eb465aa42e750f991e425bee485f06abad7e04af80")
	plaintext := kvHex(t, "edc089a518219ec1cee184e89d2d37af")
	const box = "2d5e43eb465aa42e750f991e425bee485f06abad7e04af80" +
		"fe318e39d0e4ce932d2b54b300c56d2cda55ee5f0488d63eb1d5f76f7919a49a"
	if got := hex.EncodeToString(sealWithNonce(key, nonce, plaintext)); got != box {
		t.Errorf("sealWithNonce = %s, want %s", got, box)
	}
	if got, err := open(key, kvHex(t, box)); err != nil || !bytes.Equal(got, plaintext) {
		t.Errorf("open = %x, %v; want %x", got, err, plaintext)
	}
}

// TestHKDFVectors checks the empty-salt rows of upstream test_hkdf.py at
// every output length, as upstream does.
func TestHKDFVectors(t *testing.T) {
	for _, c := range loadKeyVectors(t).HKDF {
		want := kvHex(t, c.Out)
		for n := 0; n <= len(want); n++ {
			if got := hkdfBytes(kvHex(t, c.SKM), kvHex(t, c.Info), n); !bytes.Equal(got, want[:n]) {
				t.Errorf("hkdf(%s, info %s, %d) = %x, want %x", c.SKM, c.Info, n, got, want[:n])
			}
		}
	}
}

func TestDeriveKeyVectors(t *testing.T) {
	for _, c := range loadKeyVectors(t).DeriveKey {
		got := DeriveKey(kvHex(t, c.Key), c.Purpose, c.Length)
		if want := kvHex(t, c.Out); !bytes.Equal(got, want) {
			t.Errorf("DeriveKey(%s…, %q, %d) = %x, want %x", c.Key[:8], c.Purpose, c.Length, got, want)
		}
	}
}

func TestPhaseKeyVectors(t *testing.T) {
	for _, c := range loadKeyVectors(t).PhaseKey {
		got := phaseKey(kvHex(t, c.Key), c.Side, c.Phase)
		if want := kvHex(t, c.Out); !bytes.Equal(got[:], want) {
			t.Errorf("phaseKey(%s…, %q, %q) = %x, want %x", c.Key[:8], c.Side, c.Phase, got[:], want)
		}
	}
}

// TestRelayToken checks the Dilation relay token, HKDF(dilation key,
// "transit_relay_token"), which reuses hkdfBytes.
func TestRelayToken(t *testing.T) {
	v := loadKeyVectors(t).RelayToken
	got := hkdfBytes(kvHex(t, v.DilationKey), []byte("transit_relay_token"), 32)
	if want := kvHex(t, v.Out); !bytes.Equal(got, want) {
		t.Errorf("relay token = %x, want %x", got, want)
	}
}

func TestSealVectors(t *testing.T) {
	for _, c := range loadKeyVectors(t).Seal {
		key, plaintext, want := kvKey(t, c.Key), kvHex(t, c.Plaintext), kvHex(t, c.Box)
		if got := sealWithNonce(key, kvNonce(t, c.Nonce), plaintext); !bytes.Equal(got, want) {
			t.Errorf("sealWithNonce(%d-byte plaintext) = %x, want %x", len(plaintext), got, want)
		}
		if got, err := open(key, want); err != nil || !bytes.Equal(got, plaintext) {
			t.Errorf("open(%d-byte box) = %x, %v; want %x", len(want), got, err, plaintext)
		}
	}
}

func TestOpen(t *testing.T) {
	key := phaseKey([]byte("k"), "side", "0")
	plaintext := []byte(`{"app_versions": {}}`)
	box := seal(key, plaintext)
	if len(box) != len(plaintext)+boxOverhead {
		t.Fatalf("seal gave %d bytes, want %d", len(box), len(plaintext)+boxOverhead)
	}
	if got, err := open(key, box); err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	if bytes.Equal(seal(key, plaintext), box) {
		t.Error("seal reused a nonce")
	}

	flip := func(i int) []byte {
		b := bytes.Clone(box)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		key  *[32]byte
		box  []byte
	}{
		{"nonce tampered", key, flip(0)},
		{"tag tampered", key, flip(nonceSize)},
		{"ciphertext tampered", key, flip(len(box) - 1)},
		{"truncated", key, box[:len(box)-1]},
		{"wrong key", phaseKey([]byte("k"), "side", "1"), box},
		{"empty", key, nil},
		{"shorter than nonce+tag", key, box[:boxOverhead-1]},
		{"nonce+tag, tag wrong", key, make([]byte, boxOverhead)},
	}
	for _, tt := range tests {
		if got, err := open(tt.key, tt.box); !errors.Is(err, errDecrypt) || got != nil {
			t.Errorf("%s: open = %x, %v; want errDecrypt", tt.name, got, err)
		}
	}
}
