package transit

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Hints, against the reference's _hints.py (testdata/hint_vectors.json,
// written by testdata/gen_hint_vectors.py from magic-wormhole 0.24).

func raws(texts ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(texts))
	for i, s := range texts {
		out[i] = json.RawMessage(s)
	}
	return out
}

func TestParseHints(t *testing.T) {
	direct := func(host string, port int, prio float64) Hint { return Hint{Host: host, Port: port, Priority: prio} }
	relay := func(host string, port int, prio float64) Hint {
		return Hint{Relay: true, Host: host, Port: port, Priority: prio}
	}
	for _, tt := range []struct {
		name string
		in   []string
		want []Hint
	}{
		{"none", nil, nil},
		{"direct", []string{`{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "1.2.3.4", "port": 1234}`}, []Hint{direct("1.2.3.4", 1234, 0)}},
		{"direct, priority kept", []string{`{"type":"direct-tcp-v1","priority":1.5,"hostname":"h","port":1}`}, []Hint{direct("h", 1, 1.5)}},
		{"direct without priority", []string{`{"type":"direct-tcp-v1","hostname":"h","port":65535}`}, []Hint{direct("h", 65535, 0)}},
		{"direct ipv6", []string{`{"type":"direct-tcp-v1","hostname":"fe80::1","port":9}`}, []Hint{direct("fe80::1", 9, 0)}},
		{"extra fields ignored", []string{`{"type":"direct-tcp-v1","hostname":"h","port":7,"future":{"x":[1]}}`}, []Hint{direct("h", 7, 0)}},
		{"relay", []string{`{"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "transit.magic-wormhole.io", "port": 4001}]}`},
			[]Hint{relay("transit.magic-wormhole.io", 4001, 0)}},
		{"relay reachable two ways", []string{`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"r1","port":1},{"type":"direct-tcp-v1","hostname":"r2","port":2,"priority":0.5}]}`},
			[]Hint{relay("r1", 1, 0), relay("r2", 2, 0.5)}},
		{"relay: tor and unknown nested hints skipped", []string{`{"type":"relay-v1","hints":[{"type":"tor-tcp-v1","hostname":"x.onion","port":1},{"type":"websocket-v1","url":"wss://r"},{"type":"direct-tcp-v1","hostname":"r","port":2}]}`},
			[]Hint{relay("r", 2, 0)}},
		{"relay: nested hints need a type", []string{`{"type":"relay-v1","hints":[{"hostname":"r","port":2}]}`}, nil},
		{"relay: nested relay not followed", []string{`{"type":"relay-v1","hints":[{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"r","port":2}]}]}`}, nil},
		{"relay: nested bad ports dropped", []string{`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"a","port":0},{"type":"direct-tcp-v1","hostname":"b","port":70000},{"type":"direct-tcp-v1","hostname":"c","port":3}]}`},
			[]Hint{relay("c", 3, 0)}},
		{"relay empty", []string{`{"type":"relay-v1","hints":[]}`}, nil},
		{"relay without hints", []string{`{"type":"relay-v1"}`}, nil},
		{"relay hints null", []string{`{"type":"relay-v1","hints":null}`}, nil},
		{"relay hints not a list", []string{`{"type":"relay-v1","hints":{"type":"direct-tcp-v1","hostname":"r","port":2}}`}, nil},
		{"tor ignored", []string{`{"type": "tor-tcp-v1", "priority": 0.0, "hostname": "abc.onion", "port": 80}`}, nil},
		{"unknown type ignored", []string{`{"type":"carrier-pigeon-v1","hostname":"h","port":1}`}, nil},
		{"no type", []string{`{"hostname":"h","port":1}`}, nil},
		{"type not a string", []string{`{"type":5,"hostname":"h","port":1}`}, nil},
		{"not an object", []string{`"direct-tcp-v1"`, `[1,2]`, `null`, `7`, `true`}, nil},
		{"not JSON", []string{`{`, ``, `{"type":"direct-tcp-v1",}`}, nil},
		{"port zero", []string{`{"type":"direct-tcp-v1","hostname":"h","port":0}`}, nil},
		{"port negative", []string{`{"type":"direct-tcp-v1","hostname":"h","port":-1}`}, nil},
		{"port 65536", []string{`{"type":"direct-tcp-v1","hostname":"h","port":65536}`}, nil},
		{"port huge", []string{`{"type":"direct-tcp-v1","hostname":"h","port":99999999999999999999}`}, nil},
		{"port a string", []string{`{"type":"direct-tcp-v1","hostname":"h","port":"1234"}`}, nil},
		{"port a float", []string{`{"type":"direct-tcp-v1","hostname":"h","port":1234.0}`}, nil},
		{"port fractional", []string{`{"type":"direct-tcp-v1","hostname":"h","port":12.5}`}, nil},
		{"port missing", []string{`{"type":"direct-tcp-v1","hostname":"h"}`}, nil},
		{"port null", []string{`{"type":"direct-tcp-v1","hostname":"h","port":null}`}, nil},
		{"port bool", []string{`{"type":"direct-tcp-v1","hostname":"h","port":true}`}, nil},
		{"hostname empty", []string{`{"type":"direct-tcp-v1","hostname":"","port":1}`}, nil},
		{"hostname missing", []string{`{"type":"direct-tcp-v1","port":1}`}, nil},
		{"hostname not a string", []string{`{"type":"direct-tcp-v1","hostname":["h"],"port":1}`}, nil},
		{"priority not a number", []string{`{"type":"direct-tcp-v1","hostname":"h","port":1,"priority":"high"}`}, nil},
		{"priority null", []string{`{"type":"direct-tcp-v1","hostname":"h","port":1,"priority":null}`}, []Hint{direct("h", 1, 0)}},
		// encoding/json matches keys without regard to case; the
		// reference does not. Harmless: no encoder writes such keys.
		{"keys in another case", []string{`{"TYPE":"direct-tcp-v1","Hostname":"h","PORT":1}`}, []Hint{direct("h", 1, 0)}},
		{"duplicate keys: the last wins, as in Python", []string{`{"type":"direct-tcp-v1","hostname":"a","port":1,"hostname":"b"}`}, []Hint{direct("b", 1, 0)}},
		{"one bad hint does not spoil the others", []string{
			`{"type":"direct-tcp-v1","hostname":"a","port":1}`,
			`{"type":"direct-tcp-v1","hostname":"bad","port":"x"}`,
			`"junk"`,
			`{"type":"tor-tcp-v1","hostname":"x.onion","port":1}`,
			`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"r","port":4001}]}`,
			`{"type":"direct-tcp-v1","hostname":"b","port":2}`,
		}, []Hint{direct("a", 1, 0), relay("r", 4001, 0), direct("b", 2, 0)}},
	} {
		got := ParseHints(raws(tt.in...))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParseHints = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

type hintVectors struct {
	Encode []struct {
		Name string  `json:"name"`
		Hint refHint `json:"hint"`
		JSON string  `json:"json"`
	} `json:"encode"`
	Parse []struct {
		Name      string  `json:"name"`
		JSON      string  `json:"json"`
		Reference refHint `json:"reference"`
	} `json:"parse"`
	RelayArgv []struct {
		Location  string  `json:"location"`
		Reference refHint `json:"reference"`
	} `json:"relay_argv"`
	VersionFields json.RawMessage `json:"version_fields"`
}

// refHint is what the reference made of a hint: see gen_hint_vectors.py.
type refHint struct {
	Kind     string          `json:"kind"` // direct, tor, relay, dropped, raises
	Hostname string          `json:"hostname,omitempty"`
	Port     json.RawMessage `json:"port,omitempty"`     // the reference keeps whatever JSON value it got
	Priority json.RawMessage `json:"priority,omitempty"` // likewise
	Hints    []refHint       `json:"hints,omitempty"`
	Error    string          `json:"error,omitempty"`
}

func (r refHint) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// gander is what gander should keep of a reference hint: direct hints as
// they are, the direct hints inside a relay hint, no Tor.
func (r refHint) gander(t *testing.T, relay bool) []Hint {
	t.Helper()
	switch r.Kind {
	case "direct":
		var port int
		var prio float64
		if err := json.Unmarshal(r.Port, &port); err != nil {
			t.Fatalf("reference port %s: %v", r.Port, err)
		}
		if err := json.Unmarshal(r.Priority, &prio); err != nil {
			t.Fatalf("reference priority %s: %v", r.Priority, err)
		}
		return []Hint{{Relay: relay, Host: r.Hostname, Port: port, Priority: prio}}
	case "relay":
		var out []Hint
		for _, h := range r.Hints {
			out = append(out, h.gander(t, true)...)
		}
		return out
	case "tor", "dropped", "raises":
		// Dilation has no Tor. Where the reference raises, its whole
		// "connection-hints" message is lost; gander drops the one hint.
		return nil
	}
	t.Fatalf("reference kind %q", r.Kind)
	return nil
}

func loadHintVectors(t *testing.T) hintVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/hint_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v hintVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Encode) == 0 || len(v.Parse) == 0 || len(v.RelayArgv) == 0 {
		t.Fatal("hint_vectors.json has no vectors")
	}
	return v
}

// Hints the reference keeps and gander deliberately refuses.
var ganderStricterHints = map[string]string{
	"port zero":       "cannot be dialled",
	"port negative":   "cannot be dialled",
	"port too big":    "cannot be dialled",
	"port bool":       "Python's True is an int; not a port",
	"hostname empty":  "cannot be dialled",
	"priority string": "no encoder sends it; priority is unused anyway",
}

// Cases where gander differs from the reference by mistake; each has its
// own failing test.
var ganderHintBugs = map[string]string{
	"relay with bad port inside":     "TestParseHintsKeepsGoodRelayHintsBesideMalformedOnes",
	"relay with bad hostname inside": "TestParseHintsKeepsGoodRelayHintsBesideMalformedOnes",
}

func TestParseHintsMatchesReference(t *testing.T) {
	v := loadHintVectors(t)
	var all []json.RawMessage
	var allWant []Hint
	for _, tt := range v.Parse {
		if test, ok := ganderHintBugs[tt.Name]; ok {
			t.Logf("%s: see %s", tt.Name, test)
			continue
		}
		var want []Hint
		if why, ok := ganderStricterHints[tt.Name]; ok {
			t.Logf("%s: the reference keeps %v; gander drops it (%s)", tt.Name, tt.Reference, why)
		} else {
			want = tt.Reference.gander(t, false)
		}
		got := ParseHints(raws(tt.JSON))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s\n gander %+v\n want   %+v (reference: %+v)", tt.Name, tt.JSON, got, want, tt.Reference)
		}
		all = append(all, json.RawMessage(tt.JSON))
		allWant = append(allWant, want...)
	}
	// All at once: one hint never affects another.
	if got := ParseHints(all); !reflect.DeepEqual(got, allWant) {
		t.Errorf("all hints at once:\n gander %+v\n want   %+v", got, allWant)
	}
}

// The reference (parse_hint) drops a malformed entry inside a relay hint
// and keeps the relay's other entries; gander decodes the nested list in
// one json.Unmarshal, so a single entry of the wrong type loses the whole
// relay hint. (ParseHints' own comment promises the reference's behaviour.)
func TestParseHintsKeepsGoodRelayHintsBesideMalformedOnes(t *testing.T) {
	for _, in := range []string{
		`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"bad","port":"2"},{"type":"direct-tcp-v1","hostname":"good","port":3}]}`,
		`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":5,"port":2},{"type":"direct-tcp-v1","hostname":"good","port":3}]}`,
		`{"type":"relay-v1","hints":["junk",{"type":"direct-tcp-v1","hostname":"good","port":3}]}`,
		`{"type":"relay-v1","hints":[{"type":"future-v9","port":"any"},{"type":"direct-tcp-v1","hostname":"good","port":3}]}`,
	} {
		want := []Hint{{Relay: true, Host: "good", Port: 3}}
		if got := ParseHints(raws(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n gander %+v\n want   %+v", in, got, want)
		}
	}
}

// jsonKeys lists the structure of a JSON text: "{", "[", "}", "]" and
// every object key, in order (values left out).
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	type container struct{ object, wantKey bool }
	var stack []container
	var out []string
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		top := len(stack) - 1
		if s, ok := tok.(string); ok && top >= 0 && stack[top].object && stack[top].wantKey {
			out = append(out, s)
			stack[top].wantKey = false
			continue
		}
		complete := true // tok ends a value
		switch tok {
		case json.Delim('{'):
			stack = append(stack, container{object: true, wantKey: true})
			out, complete = append(out, "{"), false
		case json.Delim('['):
			stack = append(stack, container{})
			out, complete = append(out, "["), false
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
			out = append(out, tok.(json.Delim).String())
		}
		if n := len(stack); complete && n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
}

// EncodeHints writes what the reference's encode_hint writes: the same
// keys in the same order, the same values (Python writes 0.0 where Go
// writes 0; both are the JSON number zero).
func TestEncodeHintsMatchesReference(t *testing.T) {
	v := loadHintVectors(t)
	for _, tt := range v.Encode {
		hs := tt.Hint.gander(t, false)
		if len(hs) != 1 {
			t.Fatalf("%s: %d hints", tt.Name, len(hs))
		}
		enc := EncodeHints(hs)
		if len(enc) != 1 {
			t.Fatalf("%s: EncodeHints gave %d", tt.Name, len(enc))
		}
		var got, want any
		if err := json.Unmarshal(enc[0], &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(tt.JSON), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n gander    %s\n reference %s", tt.Name, enc[0], tt.JSON)
		}
		if g, w := jsonKeys(t, enc[0]), jsonKeys(t, []byte(tt.JSON)); !slices.Equal(g, w) {
			t.Errorf("%s: key order %v, reference %v", tt.Name, g, w)
		}
		// And back.
		if back := ParseHints(enc); !reflect.DeepEqual(back, hs) {
			t.Errorf("%s: ParseHints(EncodeHints(h)) = %+v, want %+v", tt.Name, back, hs)
		}
	}
}

func TestEncodeHints(t *testing.T) {
	hs := []Hint{
		{Host: "192.168.1.5", Port: 40123},
		{Host: "::1", Port: 1, Priority: -2.25},
		{Relay: true, Host: "transit.magic-wormhole.io", Port: 4001},
		{Relay: true, Host: "r", Port: 65535, Priority: 0.5},
	}
	want := []string{
		`{"type":"direct-tcp-v1","priority":0,"hostname":"192.168.1.5","port":40123}`,
		`{"type":"direct-tcp-v1","priority":-2.25,"hostname":"::1","port":1}`,
		`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","priority":0,"hostname":"transit.magic-wormhole.io","port":4001}]}`,
		`{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","priority":0.5,"hostname":"r","port":65535}]}`,
	}
	got := EncodeHints(hs)
	if len(got) != len(want) {
		t.Fatalf("%d encoded", len(got))
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("hint %d: %s, want %s", i, got[i], want[i])
		}
	}
	if back := ParseHints(got); !reflect.DeepEqual(back, hs) {
		t.Errorf("round trip: %+v", back)
	}
	if got := EncodeHints(nil); got != nil {
		t.Errorf("EncodeHints(nil) = %v", got)
	}
}

func TestHintString(t *testing.T) {
	for _, tt := range []struct {
		h    Hint
		want string
	}{
		{Hint{Host: "10.0.0.2", Port: 4444}, "direct 10.0.0.2:4444"},
		{Hint{Relay: true, Host: "transit.magic-wormhole.io", Port: 4001}, "relay transit.magic-wormhole.io:4001"},
		{Hint{Host: "fe80::1", Port: 9}, "direct [fe80::1]:9"},
	} {
		if got := tt.h.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.h, got, tt.want)
		}
	}
}

// ParseRelayLocation accepts what the reference's parse_hint_argv accepts
// for a relay, except where noted.
func TestParseRelayLocationMatchesReference(t *testing.T) {
	differences := map[string]string{
		"tcp:host:0":     "gander refuses a port that cannot be dialled",
		"tcp:host:65536": "gander refuses a port that cannot be dialled",
		"tcp::4001":      "gander refuses an empty host",
		"tcp:host:+80":   "gander (strconv.Atoi) takes a sign; harmless",
		// A minor gap: the reference CLI allows a ":priority=N" suffix
		// (priority is unused by Dilation), gander refuses the location.
		"tcp:host:4001:priority=2.5": "gander refuses the priority suffix",
	}
	v := loadHintVectors(t)
	for _, tt := range v.RelayArgv {
		got, err := ParseRelayLocation(tt.Location)
		if why, ok := differences[tt.Location]; ok {
			t.Logf("%q: reference %v; gander %v, %v (%s)", tt.Location, tt.Reference, got, err, why)
			continue
		}
		want := tt.Reference.gander(t, true)
		switch {
		case len(want) == 0 && err == nil:
			t.Errorf("%q: gander accepts %+v; the reference refuses it", tt.Location, got)
		case len(want) == 1 && (err != nil || got != want[0]):
			t.Errorf("%q: gander %+v, %v; want %+v", tt.Location, got, err, want[0])
		}
	}
}

func TestParseRelayLocation(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Hint
		ok   bool
	}{
		{"tcp:transit.magic-wormhole.io:4001", Hint{Relay: true, Host: "transit.magic-wormhole.io", Port: 4001}, true},
		{DefaultRelay, Hint{Relay: true, Host: "transit.magic-wormhole.io", Port: 4001}, true},
		{"tcp:127.0.0.1:1", Hint{Relay: true, Host: "127.0.0.1", Port: 1}, true},
		{"tcp:[::1]:65535", Hint{Relay: true, Host: "::1", Port: 65535}, true},
		{"tcp:host:0", Hint{}, false},
		{"tcp:host:65536", Hint{}, false},
		{"tcp:host:-1", Hint{}, false},
		{"tcp:host:port", Hint{}, false},
		{"tcp:host", Hint{}, false},
		{"tcp::4001", Hint{}, false},
		{"tcp:::1:4001", Hint{}, false}, // IPv6 needs brackets
		{"udp:host:4001", Hint{}, false},
		{"TCP:host:4001", Hint{}, false},
		{"host:4001", Hint{}, false},
		{"ws://relay:4001", Hint{}, false},
		{"", Hint{}, false},
	} {
		got, err := ParseRelayLocation(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRelayLocation(%q) = %+v, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "transit relay") {
			t.Errorf("ParseRelayLocation(%q): error %q does not say what it is about", tt.in, err)
		}
	}
}
