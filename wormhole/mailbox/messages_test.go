package mailbox

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeServerMessage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want serverMessage // nil when an error is expected
	}{
		// Every type, as the reference server sends it (server_tx included).
		{"welcome full", `{"type": "welcome", "welcome": {"motd": "hi", "current_cli_version": "0.24.0", "error": "go away", "your-address": {"port": 4000, "ipv4": "1.2.3.4"}}, "server_tx": 1.5}`,
			welcomeMessage{Welcome{MOTD: "hi", CurrentCLIVersion: "0.24.0", Error: "go away"}}},
		{"welcome empty", `{"type": "welcome", "welcome": {}, "server_tx": 1.5}`, welcomeMessage{}},
		{"ack", `{"type": "ack", "id": "1f2e", "server_tx": 1.5}`, ackMessage{"1f2e"}},
		{"ack null id", `{"type": "ack", "id": null}`, ackMessage{}},
		{"ack no id", `{"type": "ack"}`, ackMessage{}},
		{"nameplates", `{"type": "nameplates", "nameplates": [{"id": "1"}, {"id": "12", "wordlist": "x"}]}`, nameplatesMessage{[]string{"1", "12"}}},
		{"nameplates empty", `{"type": "nameplates", "nameplates": []}`, nameplatesMessage{[]string{}}},
		{"allocated", `{"type": "allocated", "nameplate": "4"}`, allocatedMessage{"4"}},
		{"claimed", `{"type": "claimed", "mailbox": "abcdefghijklm"}`, claimedMessage{"abcdefghijklm"}},
		{"released", `{"type": "released", "server_tx": 2}`, releasedMessage{}},
		{"closed", `{"type": "closed"}`, closedMessage{}},
		{"pong", `{"type": "pong", "pong": 7}`, pongMessage{7}},
		{"error", `{"type": "error", "error": "crowded", "orig": {"type": "claim", "nameplate": "4"}}`,
			errorMessage{Error: "crowded", Orig: json.RawMessage(`{"type": "claim", "nameplate": "4"}`)}},
		{"message", `{"type": "message", "side": "a1b2c3d4e5", "phase": "pake", "body": "00ff10", "server_rx": 1.25, "id": "beef"}`,
			Message{Side: "a1b2c3d4e5", Phase: "pake", Body: []byte{0, 0xff, 0x10}}},
		{"message uppercase hex", `{"type": "message", "side": "s", "phase": "0", "body": "ABCD"}`, Message{Side: "s", Phase: "0", Body: []byte{0xab, 0xcd}}},
		{"message empty body and phase", `{"type": "message", "side": "s", "phase": "", "body": ""}`, Message{Side: "s", Phase: "", Body: []byte{}}},
		{"unknown type", `{"type": "frobnicate", "x": 1}`, unknownMessage{"frobnicate"}},
		{"missing type", `{"welcome": {}}`, unknownMessage{""}},
		{"unknown keys ignored", `{"type": "closed", "future": [1, {"a": null}]}`, closedMessage{}},

		// Missing or mistyped fields.
		{"welcome without body", `{"type": "welcome"}`, nil},
		{"welcome null body", `{"type": "welcome", "welcome": null}`, nil},
		{"welcome motd not string", `{"type": "welcome", "welcome": {"motd": 5}}`, nil},
		{"allocated without nameplate", `{"type": "allocated"}`, nil},
		{"allocated numeric nameplate", `{"type": "allocated", "nameplate": 4}`, nil},
		{"claimed without mailbox", `{"type": "claimed"}`, nil},
		{"pong without value", `{"type": "pong"}`, nil},
		{"pong string", `{"type": "pong", "pong": "7"}`, nil},
		{"pong huge", `{"type": "pong", "pong": 1e400}`, nil},
		{"pong overflow", `{"type": "pong", "pong": 99999999999999999999999}`, nil},
		{"message without side", `{"type": "message", "phase": "pake", "body": "00"}`, nil},
		{"message without phase", `{"type": "message", "side": "s", "body": "00"}`, nil},
		{"message without body", `{"type": "message", "side": "s", "phase": "pake"}`, nil},
		{"message null body", `{"type": "message", "side": "s", "phase": "pake", "body": null}`, nil},
		{"message body odd hex", `{"type": "message", "side": "s", "phase": "pake", "body": "abc"}`, nil},
		{"message body not hex", `{"type": "message", "side": "s", "phase": "pake", "body": "zz"}`, nil},
		{"message body number", `{"type": "message", "side": "s", "phase": "pake", "body": 12}`, nil},
		{"nameplates wrong shape", `{"type": "nameplates", "nameplates": ["1"]}`, nil},
		{"type not string", `{"type": 1}`, nil},

		// Not a JSON object at all.
		{"array", `[1, 2]`, nil},
		{"string", `"welcome"`, nil},
		{"number", `42`, nil},
		{"empty", ``, nil},
		{"truncated", `{"type": "ack", "id": "1f`, nil},
		{"trailing garbage", `{"type": "ack"} {}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeServerMessage([]byte(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("decoded %#v, want an error", got)
				}
				if !errors.Is(err, errMalformed) {
					t.Fatalf("error %v does not wrap errMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// "null" decodes into a zero wireMessage without error: an empty type is
// an unknown message, which the loop skips. Pin that down.
func TestDecodeServerMessageNull(t *testing.T) {
	got, err := decodeServerMessage([]byte("null"))
	if err != nil || got != (unknownMessage{}) {
		t.Fatalf("got %#v, %v; want an empty unknownMessage", got, err)
	}
}

func TestEncodeCommand(t *testing.T) {
	tests := []struct {
		name string
		cmd  command
		want string
	}{
		{"bind", bindCommand("lothar.com/wormhole/text-or-file-xfer", "a1b2c3d4e5", "0.1.0"),
			`{"type":"bind","id":"1f2e","appid":"lothar.com/wormhole/text-or-file-xfer","side":"a1b2c3d4e5","client_version":["gander","0.1.0"]}`},
		{"list", listCommand(), `{"type":"list","id":"1f2e"}`},
		{"allocate", allocateCommand(), `{"type":"allocate","id":"1f2e"}`},
		{"claim", claimCommand("4"), `{"type":"claim","id":"1f2e","nameplate":"4"}`},
		{"release", releaseCommand("4"), `{"type":"release","id":"1f2e","nameplate":"4"}`},
		{"release without nameplate", releaseCommand(""), `{"type":"release","id":"1f2e"}`},
		{"open", openCommand("abcdefghijklm"), `{"type":"open","id":"1f2e","mailbox":"abcdefghijklm"}`},
		{"add", addCommand("pake", []byte{0, 0xab, 0xff}), `{"type":"add","id":"1f2e","phase":"pake","body":"00abff"}`},
		{"add empty phase and body", addCommand("", nil), `{"type":"add","id":"1f2e","phase":"","body":""}`},
		{"close", closeCommand("abcdefghijklm", Happy), `{"type":"close","id":"1f2e","mailbox":"abcdefghijklm","mood":"happy"}`},
		{"close lonely", closeCommand("m", Lonely), `{"type":"close","id":"1f2e","mailbox":"m","mood":"lonely"}`},
		{"ping", pingCommand(0), `{"type":"ping","id":"1f2e","ping":0}`},
		{"ping value", pingCommand(123456), `{"type":"ping","id":"1f2e","ping":123456}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(encodeCommand(tt.cmd, "1f2e"))
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// The reference's keys, and nothing else, appear in every command.
func TestEncodeCommandKeys(t *testing.T) {
	allowed := map[string]bool{"type": true, "id": true, "appid": true, "side": true, "client_version": true,
		"nameplate": true, "mailbox": true, "phase": true, "body": true, "mood": true, "ping": true}
	for _, cmd := range []command{bindCommand("a", "s", "v"), listCommand(), allocateCommand(), claimCommand("1"),
		releaseCommand("1"), openCommand("m"), addCommand("p", []byte("b")), closeCommand("m", Errory), pingCommand(1)} {
		var m map[string]any
		if err := json.Unmarshal(encodeCommand(cmd, commandID()), &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			if !allowed[k] {
				t.Errorf("%s: unexpected key %q", cmd.Type, k)
			}
		}
		if id, _ := m["id"].(string); len(id) != 4 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Errorf("%s: id %q is not 4 lowercase hex characters", cmd.Type, m["id"])
		}
	}
}

// encodeCommand must not keep the id it was given in the caller's value.
func TestEncodeCommandDoesNotAlias(t *testing.T) {
	cmd := listCommand()
	encodeCommand(cmd, "aaaa")
	if cmd.ID != nil {
		t.Fatal("encodeCommand modified its argument")
	}
}

func FuzzDecodeServerMessage(f *testing.F) {
	seeds := []string{
		// One valid message of each type.
		`{"type": "welcome", "welcome": {"motd": "hello", "your-address": {"port": 1, "ipv6": "::1"}}, "server_tx": 1.0}`,
		`{"type": "ack", "id": "1f2e", "server_tx": 1.0}`,
		`{"type": "nameplates", "nameplates": [{"id": "1"}, {"id": "22"}]}`,
		`{"type": "allocated", "nameplate": "4"}`,
		`{"type": "claimed", "mailbox": "abcdefghijklm"}`,
		`{"type": "released"}`,
		`{"type": "closed"}`,
		`{"type": "pong", "pong": 3}`,
		`{"type": "error", "error": "crowded", "orig": {"type": "claim"}}`,
		`{"type": "message", "side": "a1b2c3d4e5", "phase": "version", "body": "deadbeef", "server_rx": 1.0, "id": "aaaa"}`,
		`{"type": "unknown-future-type"}`,
		// Truncated in the middle of a string, a number, an object.
		`{"type": "message", "side": "a1b2c3d4e5", "phase": "ver`,
		`{"type": "pong", "pong": 12`,
		`{"type": "welcome", "welcome": {`,
		// Huge and odd numbers.
		`{"type": "pong", "pong": 1e999999}`,
		`{"type": "pong", "pong": -99999999999999999999999999999}`,
		`{"type": "ack", "id": "x", "server_tx": 1e308}`,
		// Deep nesting, in a known and an ignored key.
		`{"type": "error", "error": "e", "orig": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
		`{"type": "closed", "x": ` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000) + `}`,
		// Not UTF-8, in a value and in the body.
		"{\"type\": \"message\", \"side\": \"\xff\xfe\", \"phase\": \"\xc3\", \"body\": \"00\"}",
		"{\"type\": \"welcome\", \"welcome\": {\"motd\": \"\x80\x81\"}}",
		"\xff\xff\xff",
		// Escapes and duplicate keys.
		`{"type": "message", "side": "s", "phase": "\u0000\ud800", "body": "00", "body": "11"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := decodeServerMessage(data)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		for _, text := range serverTexts(msg) {
			if len(text) > MaxServerText {
				t.Fatalf("a server text of %d bytes was kept", len(text))
			}
		}
		m, ok := msg.(Message)
		if !ok {
			return
		}
		// Re-encoding the body as hex (as the server relays an add) must
		// give the same Message back.
		again, err := json.Marshal(map[string]string{"type": "message", "side": m.Side, "phase": m.Phase, "body": hex.EncodeToString(m.Body)})
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeServerMessage(again)
		if err != nil {
			t.Fatalf("re-encoded message %s does not decode: %v", again, err)
		}
		m2 := back.(Message)
		if m2.Side != m.Side || m2.Phase != m.Phase || !bytes.Equal(m2.Body, m.Body) {
			t.Fatalf("round trip changed %#v into %#v", m, m2)
		}
		// And the add command we would send carries the same hex body.
		var add struct{ Phase, Body string }
		if err := json.Unmarshal(encodeCommand(addCommand(m.Phase, m.Body), "0000"), &add); err != nil {
			t.Fatal(err)
		}
		if add.Phase != m.Phase || add.Body != hex.EncodeToString(m.Body) {
			t.Fatalf("add command %+v does not carry %#v", add, m)
		}
	})
}

// What the server says to be shown or kept (its MOTD, its refusals, the
// command it echoes, a type we do not know) is cut to MaxServerText
// however long the server makes it, without splitting a UTF-8 sequence.
func TestServerTextsAreCapped(t *testing.T) {
	long := strings.Repeat("é", 1<<20)
	quoted, _ := json.Marshal(long)
	welcome, err := decodeServerMessage([]byte(`{"type": "welcome", "welcome": {"motd": ` + string(quoted) +
		`, "error": ` + string(quoted) + `, "current_cli_version": ` + string(quoted) + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	w := welcome.(welcomeMessage).Welcome
	refusal, err := decodeServerMessage([]byte(`{"type": "error", "error": ` + string(quoted) + `, "orig": {"type": "claim", "x": ` + string(quoted) + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	e := refusal.(errorMessage)
	unknown, err := decodeServerMessage([]byte(`{"type": ` + string(quoted) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"motd": w.MOTD, "welcome error": w.Error, "current_cli_version": w.CurrentCLIVersion,
		"error": e.Error, "orig": string(e.Orig), "unknown type": unknown.(unknownMessage).Type,
	} {
		if len(s) > MaxServerText || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") {
			t.Errorf("%s: %d bytes (valid UTF-8: %v), want at most %d ending in …", name, len(s), utf8.ValidString(s), MaxServerText)
		}
	}
	if err := (&ServerError{Message: e.Error}).Error(); len(err) > MaxServerText+100 {
		t.Errorf("ServerError text is %d bytes", len(err))
	}
}

// serverTexts is what msg keeps of the server's words.
func serverTexts(msg serverMessage) []string {
	switch m := msg.(type) {
	case welcomeMessage:
		return []string{m.Welcome.MOTD, m.Welcome.Error, m.Welcome.CurrentCLIVersion}
	case errorMessage:
		return []string{m.Error, string(m.Orig)}
	case unknownMessage:
		return []string{m.Type}
	}
	return nil
}
