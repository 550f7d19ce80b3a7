package dilation

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/gander-pair/gander/transit"
)

// L1 messages, against the version fields of wormhole.py (in
// ../transit/testdata/hint_vectors.json, written by gen_hint_vectors.py
// from magic-wormhole 0.24). The hints they carry are tested in transit.

// loadVersionFields is the reference's version fields from the hint
// vectors.
func loadVersionFields(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("../transit/testdata/hint_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		VersionFields json.RawMessage `json:"version_fields"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.VersionFields) == 0 {
		t.Fatal("hint_vectors.json has no version fields")
	}
	return v.VersionFields
}

// chooseVersion is the reference's _find_shared_versions with our list
// ["ged"]: the first of our versions that the peer also has.
func TestChooseVersion(t *testing.T) {
	if !slices.Equal(supportedVersions, []string{"ged"}) {
		t.Fatalf("supportedVersions = %q; the reference has [\"ged\"]", supportedVersions)
	}
	for _, tt := range []struct {
		peer []string
		want string
	}{
		{nil, ""},
		{[]string{}, ""},
		{[]string{"ged"}, "ged"},
		{[]string{"1"}, ""}, // 0.12 to 0.18
		{[]string{"-1"}, ""},
		{[]string{"1", "ged"}, "ged"},
		{[]string{"ogion", "ged", "1"}, "ged"},
		{[]string{"ged", "ged"}, "ged"},
		{[]string{"GED"}, ""},
		{[]string{"ged "}, ""},
		{[]string{""}, ""},
	} {
		if got := chooseVersion(tt.peer); got != tt.want {
			t.Errorf("chooseVersion(%q) = %q, want %q", tt.peer, got, tt.want)
		}
	}
}

func TestVersionFieldsJSON(t *testing.T) {
	b, err := json.Marshal(VersionFields())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"can-dilate":["ged"],"dilation-abilities":[{"type":"direct-tcp-v1"},{"type":"relay-v1"}]}`
	if string(b) != want {
		t.Errorf("VersionFields = %s, want %s", b, want)
	}
	// The same values as the reference's wormhole.py puts in "version".
	refFields := loadVersionFields(t)
	var got, ref any
	json.Unmarshal(b, &got)
	if err := json.Unmarshal(refFields, &ref); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ref) {
		t.Errorf("VersionFields = %s, reference %s", b, refFields)
	}
}

func TestL1MessageJSON(t *testing.T) {
	for _, tt := range []struct {
		msg  l1Message
		want string
	}{
		{l1Message{Type: "please", Side: "0123456789abcdef", UseVersion: "ged"}, `{"type":"please","side":"0123456789abcdef","use-version":"ged"}`},
		// No shared version: the reference leaves use-version out.
		{l1Message{Type: "please", Side: "0123456789abcdef"}, `{"type":"please","side":"0123456789abcdef"}`},
		{l1Message{Type: "connection-hints", Hints: transit.EncodeHints([]transit.Hint{{Host: "1.2.3.4", Port: 5}})},
			`{"type":"connection-hints","hints":[{"type":"direct-tcp-v1","priority":0,"hostname":"1.2.3.4","port":5}]}`},
		{l1Message{Type: "reconnect"}, `{"type":"reconnect"}`},
		{l1Message{Type: "reconnecting"}, `{"type":"reconnecting"}`},
	} {
		b, err := json.Marshal(tt.msg)
		if err != nil || string(b) != tt.want {
			t.Errorf("%+v: %s, %v; want %s", tt.msg, b, err, tt.want)
		}
	}
	// What the reference sends (json.dumps: ", " and ": ", extra keys).
	for _, tt := range []struct {
		in   string
		want l1Message
	}{
		{`{"type": "please", "side": "ff36a1b2c3d4e5f6", "use-version": "ged"}`, l1Message{Type: "please", Side: "ff36a1b2c3d4e5f6", UseVersion: "ged"}},
		{`{"type": "please", "side": "ff36a1b2c3d4e5f6"}`, l1Message{Type: "please", Side: "ff36a1b2c3d4e5f6"}},
		{`{"type": "reconnect"}`, l1Message{Type: "reconnect"}},
		{`{"type": "something-new", "x": [1, {"y": null}]}`, l1Message{Type: "something-new"}},
	} {
		var got l1Message
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, %v", tt.in, got, err)
		}
	}
	in := `{"type": "connection-hints", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "192.168.1.5", "port": 40123}, {"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "transit.magic-wormhole.io", "port": 4001}]}]}`
	var msg l1Message
	if err := json.Unmarshal([]byte(in), &msg); err != nil {
		t.Fatal(err)
	}
	want := []transit.Hint{{Host: "192.168.1.5", Port: 40123}, {Relay: true, Host: "transit.magic-wormhole.io", Port: 4001}}
	if got := transit.ParseHints(msg.Hints); msg.Type != "connection-hints" || !reflect.DeepEqual(got, want) {
		t.Errorf("connection-hints: %+v", got)
	}
}
