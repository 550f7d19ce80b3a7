package dilation

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// The L3 record codec against the reference's own encode_record and
// parse_record (testdata/record_vectors.json, written by
// testdata/gen_record_vectors.py from magic-wormhole 0.24).

// refRecord is a record as the vector files describe it.
type refRecord struct {
	Type        string  `json:"type"`
	ID          string  `json:"id"` // PING/PONG, hex
	SCID        uint32  `json:"scid"`
	Seqnum      uint32  `json:"seqnum"`
	Subprotocol string  `json:"subprotocol"`
	Data        *string `json:"data"`            // DATA, hex
	BigPayload  int     `json:"big_payload_len"` // DATA whose payload is bigPayload(n)
}

// bigPayload is the payload of the vectors' large DATA records: byte i is
// i mod 251.
func bigPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func (r refRecord) toRecord(t testing.TB) record {
	t.Helper()
	switch r.Type {
	case "kcm":
		return kcmRecord{}
	case "ping", "pong":
		id, err := hex.DecodeString(r.ID)
		if err != nil || len(id) != 4 {
			t.Fatalf("vector ping id %q", r.ID)
		}
		if r.Type == "ping" {
			return pingRecord{[4]byte(id)}
		}
		return pongRecord{[4]byte(id)}
	case "open":
		return openRecord{scid: r.SCID, seq: r.Seqnum, subprotocol: r.Subprotocol}
	case "data":
		payload := []byte{}
		if r.BigPayload > 0 {
			payload = bigPayload(r.BigPayload)
		} else if r.Data != nil {
			var err error
			if payload, err = hex.DecodeString(*r.Data); err != nil {
				t.Fatal(err)
			}
		}
		return dataRecord{scid: r.SCID, seq: r.Seqnum, payload: payload}
	case "close":
		return closeRecord{scid: r.SCID, seq: r.Seqnum}
	case "ack":
		return ackRecord{seq: r.Seqnum}
	}
	t.Fatalf("vector record type %q", r.Type)
	return nil
}

// sameRecord compares two records field by field (a DATA payload by
// content, ignoring the sender-side wire buffer).
func sameRecord(a, b record) bool {
	da, okA := a.(dataRecord)
	db, okB := b.(dataRecord)
	if okA || okB {
		return okA && okB && da.scid == db.scid && da.seq == db.seq && bytes.Equal(da.payload, db.payload)
	}
	return reflect.DeepEqual(a, b)
}

type recordVectors struct {
	Records []struct {
		Name     string       `json:"name"`
		Record   refRecord    `json:"record"`
		Hex      string       `json:"hex"`
		Prefixes []*refRecord `json:"prefixes"` // the reference's parse of hex[:n]; nil: refused
	} `json:"records"`
	Rejected []struct {
		Name string `json:"name"`
		Hex  string `json:"hex"`
	} `json:"rejected"`
	Lenient []struct {
		Name string `json:"name"`
		Hex  string `json:"hex"`
	} `json:"reference_lenient"`
}

func loadRecordVectors(t *testing.T) recordVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/record_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v recordVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Records) == 0 || len(v.Rejected) == 0 {
		t.Fatal("record_vectors.json has no vectors")
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The two examples the protocol digest quotes from upstream test_parse.py,
// independent of the vector file.
func TestRecordUpstreamExamples(t *testing.T) {
	for _, tt := range []struct {
		rec  record
		wire []byte
	}{
		{openRecord{scid: 65536, seq: 16, subprotocol: "proto"}, append([]byte{0x03, 0, 1, 0, 0, 0, 0, 0, 0x10}, "proto"...)},
		{ackRecord{seq: 19}, []byte{0x06, 0, 0, 0, 0x13}},
	} {
		if got := appendRecord(nil, tt.rec); !bytes.Equal(got, tt.wire) {
			t.Errorf("appendRecord(%#v) = %x, want %x", tt.rec, got, tt.wire)
		}
		got, err := parseRecord(tt.wire)
		if err != nil || !sameRecord(got, tt.rec) {
			t.Errorf("parseRecord(%x) = %#v, %v; want %#v", tt.wire, got, err, tt.rec)
		}
	}
}

func TestRecordsMatchReference(t *testing.T) {
	v := loadRecordVectors(t)
	for _, tt := range v.Records {
		t.Run(tt.Name, func(t *testing.T) {
			want := tt.Record.toRecord(t)
			wire := mustHex(t, tt.Hex)

			if got := appendRecord(nil, want); !bytes.Equal(got, wire) {
				t.Errorf("appendRecord = %x, reference encodes %x", got, wire)
			}
			// appendRecord appends: a non-empty dst is kept.
			if got := appendRecord([]byte("xy"), want); !bytes.Equal(got, append([]byte("xy"), wire...)) {
				t.Errorf("appendRecord onto a prefix = %x", got)
			}
			if n := recordSize(want); n != len(wire) {
				t.Errorf("recordSize = %d, encoding is %d bytes", n, len(wire))
			}
			got, err := parseRecord(wire)
			if err != nil || !sameRecord(got, want) {
				t.Fatalf("parseRecord = %#v, %v; want %#v", got, err, want)
			}
			// The sender's prepared DATA path builds the same bytes.
			if d, ok := want.(dataRecord); ok {
				p := prepareData(d.scid, d.payload)
				p.seq = d.seq
				p.encode()
				if !bytes.Equal(p.wire, wire) {
					t.Errorf("prepareData+encode = %x, want %x", p.wire, wire)
				}
			}

			// Every strict prefix. The reference refuses most of them, but
			// it also takes a short PING/PONG id as it comes; gander refuses
			// every prefix of a fixed-size record. OPEN and DATA end in a
			// variable tail, so a prefix that keeps the 9-byte header is
			// another valid record, and then both decoders must agree on it.
			variable := wire[0] == typeOpen || wire[0] == typeData
			if len(tt.Prefixes) != len(wire) {
				t.Fatalf("%d prefix results for %d bytes", len(tt.Prefixes), len(wire))
			}
			for n, ref := range tt.Prefixes {
				got, err := parseRecord(wire[:n])
				switch {
				case !variable || n < 9:
					if !errors.Is(err, errBadRecord) {
						t.Errorf("prefix %x parsed as %#v, %v; want errBadRecord", wire[:n], got, err)
					}
				case ref == nil:
					// A prefix that cuts a multi-byte UTF-8 character
					// of an OPEN name: the reference fails to decode it.
					if !errors.Is(err, errBadRecord) {
						t.Errorf("prefix %x parsed as %#v; the reference refuses it", wire[:n], got)
					}
				default:
					if err != nil || !sameRecord(got, ref.toRecord(t)) {
						t.Errorf("prefix %x parsed as %#v, %v; the reference gives %+v", wire[:n], got, err, *ref)
					}
				}
			}
		})
	}
}

func TestRecordRejectedLikeReference(t *testing.T) {
	v := loadRecordVectors(t)
	for _, tt := range v.Rejected {
		if got, err := parseRecord(mustHex(t, tt.Hex)); !errors.Is(err, errBadRecord) || got != nil {
			t.Errorf("%s: parseRecord(%s) = %#v, %v; want errBadRecord", tt.Name, tt.Hex, got, err)
		}
	}
	// Inputs the reference accepts although no encoder produces them
	// (short or long PING ids, bytes after a KCM, CLOSE or ACK): gander is
	// deliberately stricter.
	for _, tt := range v.Lenient {
		if got, err := parseRecord(mustHex(t, tt.Hex)); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: parseRecord(%s) = %#v, %v; want errBadRecord", tt.Name, tt.Hex, got, err)
		}
	}
}

func TestRecordUnknownTypesRejected(t *testing.T) {
	for b := 0x07; b <= 0xff; b++ {
		for _, tail := range [][]byte{nil, {0, 0, 0, 1}, make([]byte, 8)} {
			in := append([]byte{byte(b)}, tail...)
			if _, err := parseRecord(in); !errors.Is(err, errBadRecord) {
				t.Fatalf("parseRecord(%x) = %v, want errBadRecord", in, err)
			}
		}
	}
}

func TestRecordOpenNameMustBeUTF8(t *testing.T) {
	header := []byte{typeOpen, 0, 0, 0, 1, 0, 0, 0, 2}
	for _, name := range []string{"\xff", "\xc3", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\xf0\x9f\x98"} {
		if _, err := parseRecord(append(header[:9:9], name...)); !errors.Is(err, errBadRecord) {
			t.Errorf("OPEN name %q: %v, want errBadRecord", name, err)
		}
	}
	// A DATA payload is opaque: the same bytes are fine there.
	if _, err := parseRecord(append([]byte{typeData, 0, 0, 0, 1, 0, 0, 0, 2}, 0xff, 0xc3)); err != nil {
		t.Errorf("DATA with non-UTF-8 payload: %v", err)
	}
	for _, name := range []string{"", "a\x00b", "h\u00e9llo-\u20ac-\U0001f600", "\uffff"} {
		rec, err := parseRecord(append(header[:9:9], name...))
		if err != nil || rec.(openRecord).subprotocol != name {
			t.Errorf("OPEN name %q: %#v, %v", name, rec, err)
		}
	}
}

// A parsed DATA payload aliases the input (readRecord gives each frame its
// own buffer, so the payload can be kept without a copy).
func TestRecordDataPayloadAliasesInput(t *testing.T) {
	in := append([]byte{typeData, 0, 0, 0, 1, 0, 0, 0, 2}, "abc"...)
	rec, err := parseRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	in[9] = 'X'
	if got := string(rec.(dataRecord).payload); got != "Xbc" {
		t.Fatalf("payload %q does not alias the frame", got)
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte{})                                                              // empty: refused
	f.Add([]byte{typeKCM})                                                       // KCM
	f.Add([]byte{typeKCM, 0})                                                    // KCM with a trailing byte
	f.Add([]byte{typePing, 1, 2, 3, 4})                                          // PING
	f.Add([]byte{typePong, 1, 2, 3})                                             // PONG with a short id
	f.Add(appendRecord(nil, openRecord{65536, 16, "proto"}))                     // upstream OPEN example
	f.Add(appendRecord(nil, openRecord{1, 0, ""}))                               // OPEN with an empty name
	f.Add(appendRecord(nil, openRecord{2, 3, "h\u00e9llo-\u20ac"}))              // OPEN with a multi-byte name
	f.Add([]byte{typeOpen, 0, 0, 0, 1, 0, 0, 0, 1, 0xed, 0xa0, 0x80})            // OPEN naming a surrogate
	f.Add(appendRecord(nil, dataRecord{scid: 1, seq: 2, payload: []byte{0xff}})) // DATA
	f.Add([]byte{typeData, 0, 0, 0, 1, 0, 0, 0})                                 // DATA one byte short of its header
	f.Add(appendRecord(nil, closeRecord{65538, 18}))                             // CLOSE
	f.Add(append(appendRecord(nil, closeRecord{1, 2}), 0))                       // CLOSE with a trailing byte
	f.Add(appendRecord(nil, ackRecord{19}))                                      // upstream ACK example
	f.Add([]byte{0x07, 'u', 'n', 'k', 'n', 'o', 'w', 'n'})                       // upstream unknown type
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})          // all ones
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseRecord(b)
		if err != nil {
			if rec != nil || !errors.Is(err, errBadRecord) {
				t.Fatalf("parseRecord(%x) = %#v, %v", b, rec, err)
			}
			return
		}
		again := appendRecord(nil, rec)
		if !bytes.Equal(again, b) {
			t.Fatalf("%x parsed as %#v, which encodes as %x", b, rec, again)
		}
		if n := recordSize(rec); n != len(b) {
			t.Fatalf("%x parsed as %#v: recordSize %d", b, rec, n)
		}
	})
}
