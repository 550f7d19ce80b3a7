package fowld

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gander-pair/gander/internal/testkit"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

func TestDecodeCommand(t *testing.T) {
	tests := []struct {
		line string
		want session.Command
	}{
		{`{"kind": "allocate-code"}`, session.AllocateCode{}},
		{`{"kind": "allocate-code", "length": 3}`, session.AllocateCode{Length: 3}},
		{`{"kind": "allocate-code", "length": null}`, session.AllocateCode{}},
		{`{"kind": "allocate-code", "code-length": 5}`, session.AllocateCode{}}, // the documented key is not fowld's
		{`{"kind": "set-code", "code": " 7-foo-bar "}`, session.SetCode{Code: "7-foo-bar"}},
		{`{"kind": "local", "name": "web"}`, session.AddLocal{Local: session.Local{Name: "web", BindAddr: "127.0.0.1"}}},
		{`{"kind": "local", "name": "web", "local_listen_port": 8080, "remote_connect_port": 80, "bind_interface": "0.0.0.0"}`,
			session.AddLocal{Local: session.Local{Name: "web", ListenPort: 8080, RemoteConnectPort: 80, BindAddr: "0.0.0.0"}}},
		{`{"kind": "local", "name": "web", "local_listen_port": null, "bind_interface": "localhost"}`,
			session.AddLocal{Local: session.Local{Name: "web", BindAddr: "127.0.0.1"}}},
		{`{"kind": "remote", "name": "ssh:22 é"}`, session.AddRemote{Remote: session.Remote{Name: "ssh:22 é", Address: "127.0.0.1"}}},
		{`{"kind": "remote", "name": "web", "remote_listen_port": 65535, "local_connect_port": 1, "connect_address": "192.168.2.3"}`,
			session.AddRemote{Remote: session.Remote{Name: "web", ListenPort: 65535, ConnectPort: 1, Address: "192.168.2.3"}}},
		{`{"kind": "session-close"}`, session.Close{Timeout: 10 * time.Second}},
		{`{"kind": "session-close", "timeout": 0}`, session.Close{}},
		{`{"kind": "session-close", "timeout": 2.5}`, session.Close{Timeout: 2500 * time.Millisecond}},
		{`{"kind": "ping", "ping_id": 7}`, session.Ping{}},
		{"{\"kind\": \"ping\", \"ping_id\": \"x\", \"extra\": [1]}\r", session.Ping{}},
		{`{"kind": "send-file", "path": "/tmp/a b.txt"}`, session.SendFiles{Paths: []string{"/tmp/a b.txt"}}},
		{`{"kind": "accept-file", "id": 3}`, session.AcceptTransfer{ID: 3}},
		{`{"kind": "accept-file", "id": 3, "directory": "/srv"}`, session.AcceptTransfer{ID: 3, Dir: "/srv"}},
		{`{"kind": "refuse-file", "id": 4}`, session.RefuseTransfer{ID: 4}},
		{`{"kind": "cancel-transfer", "id": 5}`, session.CancelTransfer{ID: 5}},
	}
	for _, tt := range tests {
		got, err := decodeCommand([]byte(tt.line))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("decodeCommand(%s) = %#v, %v; want %#v", tt.line, got, err, tt.want)
		}
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	tests := []struct{ line, why string }{
		{`garbage`, "not JSON"},
		{`{"kind": "set-code", "code": "1-a"`, "not JSON"},
		{`[]`, "not a JSON object"},
		{`"allocate-code"`, "not a JSON object"},
		{`null`, "not a JSON object"},
		{`{}`, "No 'kind' in command"},
		{`{"kind": null}`, "No 'kind' in command"},
		{`{"kind": 3}`, `"kind" must be a string`},
		{`{"kind": "nope"}`, `unknown kind "nope"`},
		{`{"kind": "Allocate-Code"}`, "unknown kind"},
		{`{"kind": "allocate-code", "length": "3"}`, `"length" must be an integer from 0 to 64`},
		{`{"kind": "allocate-code", "length": -1}`, "must be an integer"},
		{`{"kind": "allocate-code", "length": 2.5}`, "must be an integer"},
		{`{"kind": "allocate-code", "length": 65}`, "must be an integer"},
		{`{"kind": "set-code"}`, `"code" is missing`},
		{`{"kind": "send-file"}`, `"path" is missing`},
		{`{"kind": "send-file", "path": ""}`, `"path" is missing`},
		{`{"kind": "accept-file"}`, `"id" is missing`},
		{`{"kind": "cancel-transfer", "id": 0}`, `"id"`},
		{`{"kind": "accept-file", "id": 1, "directory": 7}`, `"directory" must be a string`},
		{`{"kind": "set-code", "code": 7}`, `"code" must be a string`},
		{`{"kind": "set-code", "code": "nonsense"}`, "nameplate"},
		{`{"kind": "local"}`, `"name" is missing`},
		{`{"kind": "local", "name": ""}`, `"name" is missing`},
		{`{"kind": "local", "name": 5}`, `"name" must be a string`},
		{`{"kind": "local", "name": "a\u001bb"}`, "control characters"},
		{`{"kind": "local", "name": "x", "local_listen_port": "80"}`, `"local_listen_port" must be an integer from 1 to 65535`},
		{`{"kind": "local", "name": "x", "local_listen_port": 0}`, "from 1 to 65535"},
		{`{"kind": "local", "name": "x", "local_listen_port": 70000}`, "from 1 to 65535"},
		{`{"kind": "local", "name": "x", "local_listen_port": true}`, "from 1 to 65535"},
		{`{"kind": "local", "name": "x", "remote_connect_port": 1e3}`, "from 1 to 65535"},
		{`{"kind": "local", "name": "x", "bind_interface": "::1"}`, "IPv4 address"},
		{`{"kind": "local", "name": "x", "bind_interface": 127}`, "must be a string"},
		{`{"kind": "remote", "name": "x", "remote_listen_port": 99999}`, "from 1 to 65535"},
		{`{"kind": "remote", "name": "x", "local_connect_port": -5}`, "from 1 to 65535"},
		{`{"kind": "remote", "name": "x", "connect_address": "example.com"}`, "IPv4 address"},
		{`{"kind": "session-close", "timeout": "soon"}`, "number of seconds"},
		{`{"kind": "session-close", "timeout": -1}`, "number of seconds"},
		{`{"kind": "session-close", "timeout": 1e300}`, "number of seconds"},
		{`{"kind": "ping"}`, `"ping_id" is missing`},
	}
	for _, tt := range tests {
		cmd, err := decodeCommand([]byte(tt.line))
		if err == nil {
			t.Errorf("decodeCommand(%s) = %#v, want an error", tt.line, cmd)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("decodeCommand(%s): %q does not say %q", tt.line, err, tt.why)
		}
	}
}

// The lines are fowld 26.8's, byte for byte where fowld's would be the
// same (captured from real fowld: key order, separators, "kind" last).
func TestEncodeEvents(t *testing.T) {
	verifier := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		name   string
		events []session.Event
		want   string
	}{
		{"welcome", []session.Event{session.Welcome{}, session.Welcome{MOTD: "Hi ☃"}},
			`{"url": "ws://127.0.0.1:4000/v1", "welcome": {}, "kind": "welcome"}` + "\n" +
				`{"url": "ws://127.0.0.1:4000/v1", "welcome": {"motd": "Hi \u2603"}, "kind": "welcome"}` + "\n"},
		{"offers refused unread", []session.Event{session.TransfersRefused{Count: 3, Reason: "too many", Unread: true}, session.TransfersRefused{Count: 2, Reason: "quiet"}},
			`{"message": "Refused 3 file offers unread: too many", "kind": "error"}` + "\n" +
				`{"message": "2 more file offers ended: quiet", "kind": "error"}` + "\n"},
		{"code", []session.Event{session.CodeReady{Code: "3-cherokee-aztec"}},
			`{"code": "3-cherokee-aztec", "kind": "code-allocated"}` + "\n"},
		{"peer connected, fowl peer", []session.Event{session.PeerConnected{Verifier: verifier, PeerVersions: json.RawMessage(`{"fowl":{"features":["core-v1"]}}`)}},
			`{"verifier": "` + strings.Repeat("ab", 32) + `", "versions": {"fowl": {"features": ["core-v1"]}}, "kind": "peer-connected"}` + "\n"},
		{"peer connected, no versions", []session.Event{session.PeerConnected{Verifier: []byte{1}}},
			`{"verifier": "01", "versions": {}, "kind": "peer-connected"}` + "\n"},
		{"file transfers", []session.Event{
			session.TransferOffered{ID: 1, Name: "a.txt", Size: 5, Files: 1, SaveDir: "/d"},
			session.TransferProgress{ID: 1, Name: "a.txt", Done: 2, Size: 5},
			session.TransferFinished{ID: 1, Name: "a.txt", SavedAs: "/d/a.txt"},
			session.TransferFinished{ID: 2, Name: "b", Outgoing: true, Err: errors.New("refused")},
		}, `{"id": 1, "name": "a.txt", "directory": false, "size": 5, "files": 1, "save_dir": "/d", "kind": "transfer-offered"}` + "\n" +
			`{"id": 1, "name": "a.txt", "outgoing": false, "bytes": 2, "size": 5, "kind": "transfer-progress"}` + "\n" +
			`{"id": 1, "name": "a.txt", "outgoing": false, "saved_as": "/d/a.txt", "kind": "transfer-finished"}` + "\n" +
			`{"id": 2, "name": "b", "outgoing": true, "error": "refused", "kind": "transfer-finished"}` + "\n"},
		{"listening and awaiting", []session.Event{
			session.ServiceListening{Service: "echo", Addr: "127.0.0.1:44807"},
			session.AwaitingConnect{Service: "echo", Addr: "127.0.0.1:54839"},
		}, `{"name": "echo", "listening_port": 44807, "kind": "listening"}` + "\n" +
			`{"name": "echo", "local_port": 54839, "kind": "awaiting-connect"}` + "\n"},
		{"an outgoing connection", []session.Event{
			session.ConnectionOpened{ID: 1, Service: "echo"},
			session.Traffic{Connections: []session.ConnectionStats{{ID: 1, Service: "echo", BytesOut: 6}}},
			session.Traffic{Connections: []session.ConnectionStats{{ID: 1, Service: "echo", BytesOut: 6, BytesIn: 6}}},
			session.Traffic{Connections: []session.ConnectionStats{{ID: 1, Service: "echo", BytesOut: 6, BytesIn: 6}}}, // nothing new
			session.ConnectionClosed{ID: 1, Service: "echo", BytesOut: 200006, BytesIn: 6},
		}, `{"service_name": "echo", "id": 1, "kind": "outgoing-connection"}` + "\n" +
			`{"id": 1, "bytes": 6, "kind": "bytes-in"}` + "\n" +
			`{"id": 1, "bytes": 6, "kind": "bytes-out"}` + "\n" +
			`{"id": 1, "bytes": 200000, "kind": "bytes-in"}` + "\n" +
			`{"service_name": "echo", "id": 1, "kind": "outgoing-done"}` + "\n"},
		{"an outgoing connection the peer refused", []session.Event{
			session.ConnectionOpened{ID: 1, Service: "dead"},
			session.ConnectionClosed{ID: 1, Service: "dead", Err: &session.DeniedError{Service: "dead", Reason: "Connection was refused"}},
		}, `{"service_name": "dead", "id": 1, "kind": "outgoing-connection"}` + "\n" +
			`{"service_name": 1, "reason": "Connection was refused", "kind": "outgoing-lost"}` + "\n" +
			`{"service_name": "dead", "id": 1, "kind": "outgoing-done"}` + "\n"},
		{"incoming connections", []session.Event{
			session.ConnectionOpened{ID: 2, Service: "echo", Incoming: true},
			session.ConnectionClosed{ID: 2, Service: "echo", Incoming: true},
			session.ConnectionOpened{ID: 3, Service: "echo", Incoming: true},
			session.ConnectionClosed{ID: 3, Service: "echo", Incoming: true, Err: errors.New("dial tcp4 127.0.0.1:1: connection refused")},
		}, `{"service_name": "echo", "id": 2, "kind": "incoming-connection"}` + "\n" +
			`{"id": 2, "kind": "incoming-done"}` + "\n" +
			`{"service_name": "echo", "id": 3, "kind": "incoming-connection"}` + "\n" +
			`{"id": 3, "reason": "dial tcp4 127.0.0.1:1: connection refused", "kind": "incoming-lost"}` + "\n"},
		{"an incoming connection our policy refused", []session.Event{
			session.ForwardRefused{Service: "nope", Reason: "Against local policy"},
			session.ConnectionClosed{ID: 4, Service: "nope", Incoming: true, Err: &session.DeniedError{Service: "nope", Reason: "Against local policy"}},
		}, `{"service_name": "nope", "id": 4, "kind": "incoming-connection"}` + "\n" +
			`{"id": 4, "reason": "Incoming connection against local policy: {'unique-name': 'nope'}", "kind": "incoming-lost"}` + "\n"},
		{"refusals and failures", []session.Event{
			session.ForwardRefused{Service: "nope", Reason: "No service permitted for name: nope"},
			session.ForwardRefused{Service: "x", Reason: "No service permitted for name: x", ByPeer: true},
			session.OfferFailed{Service: "x", Err: &session.DeniedError{Service: "x", Reason: "No service permitted for name: x"}},
			session.OfferFailed{Service: "y", Err: errors.New("the peer wants y's daemon on port 2, not 1")},
			session.ForwardProblem{Err: errors.New(`ignoring unknown command "x" from the peer`)},
			session.CommandFailed{Err: session.ErrPingNotInDilation},
		}, `{"message": "Failed to listen on \"nope\": No service permitted for name: nope", "kind": "error"}` + "\n" +
			`{"message": "Service \"x\" failed: No service permitted for name: x", "kind": "error"}` + "\n" +
			`{"message": "Service \"y\" failed: the peer wants y's daemon on port 2, not 1", "kind": "error"}` + "\n" +
			`{"message": "ignoring unknown command \"x\" from the peer", "kind": "error"}` + "\n" +
			`{"message": "Cannot send ping: not in Dilation", "kind": "error"}` + "\n"},
		{"silent events", []session.Event{session.PeerClosing{}, session.LinkStatus{State: session.LinkConnected}, session.Traffic{Services: []session.ServiceStats{{Service: "gone", BytesIn: 5}}}}, ""},
		{"closed", []session.Event{session.Closed{}, session.Closed{Err: session.ErrLonely}},
			`{"result": "happy", "kind": "closed"}` + "\n" + `{"result": "lonely", "kind": "closed"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFowldEncoder("ws://127.0.0.1:4000/v1")
			var got []byte
			for _, ev := range tt.events {
				got = append(got, e.encode(ev)...)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			for line := range strings.Lines(string(got)) {
				if !json.Valid([]byte(line)) {
					t.Errorf("not JSON: %s", line)
				}
			}
		})
	}
}

// Bytes are attributed to their own connection, and are never lost or
// counted twice, whatever the order in which snapshots arrive.
func TestEncodeTrafficAttribution(t *testing.T) {
	e := newFowldEncoder("")
	snap := func(conns ...session.ConnectionStats) session.Traffic { return session.Traffic{Connections: conns} }
	one := func(in, out int64) session.ConnectionStats {
		return session.ConnectionStats{ID: 1, Service: "s", BytesIn: in, BytesOut: out}
	}
	two := func(in, out int64) session.ConnectionStats {
		return session.ConnectionStats{ID: 2, Service: "s", Incoming: true, BytesIn: in, BytesOut: out}
	}
	var out []byte
	for _, ev := range []session.Event{
		session.ConnectionOpened{ID: 1, Service: "s"},
		session.ConnectionOpened{ID: 2, Service: "s", Incoming: true},
		snap(one(10, 20), two(0, 3)),
		snap(one(5, 5), two(0, 1)), // older snapshots, late
		snap(one(10, 20), two(5, 3), session.ConnectionStats{ID: 9, Service: "t", BytesOut: 1}),
		session.ConnectionClosed{ID: 2, Service: "s", Incoming: true, BytesIn: 6, BytesOut: 3},
		snap(one(10, 27)),
		session.ConnectionClosed{ID: 1, Service: "s", BytesIn: 12, BytesOut: 27},
	} {
		out = append(out, e.encode(ev)...)
	}
	want := `{"service_name": "s", "id": 1, "kind": "outgoing-connection"}
{"service_name": "s", "id": 2, "kind": "incoming-connection"}
{"id": 1, "bytes": 20, "kind": "bytes-in"}
{"id": 1, "bytes": 10, "kind": "bytes-out"}
{"id": 2, "bytes": 3, "kind": "bytes-in"}
{"id": 2, "bytes": 5, "kind": "bytes-out"}
{"id": 2, "bytes": 1, "kind": "bytes-out"}
{"id": 2, "kind": "incoming-done"}
{"id": 1, "bytes": 7, "kind": "bytes-in"}
{"id": 1, "bytes": 2, "kind": "bytes-out"}
{"service_name": "s", "id": 1, "kind": "outgoing-done"}
`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// Strings are escaped as Python's json.dumps escapes them (the expected
// values are json.dumps's output).
func TestPythonStyleStrings(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"quote\" back\\ nl\n cr\r tab\t bs\b ff\f", `"quote\" back\\ nl\n cr\r tab\t bs\b ff\f"`},
		{"\x00\x1f\x7f", `"\u0000\u001f\u007f"`},
		{"é ü", `"\u00e9 \u00fc"`},
		{"\u2028", `"\u2028"`},
		{"😀", `"\ud83d\ude00"`},
		{"<&>/", `"<&>/"`},
		{"bad \xff utf-8", `"bad \ufffd utf-8"`},
	}
	for _, tt := range tests {
		if got := string(appendPyString(nil, tt.in)); got != tt.want {
			t.Errorf("appendPyString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	raw := json.RawMessage(`{"a":{"b":[1,2.5,null,true,"x"],"c":{}},"d":[], "z": "é"}`)
	if got, want := string(appendPy(nil, raw)), `{"a": {"b": [1, 2.5, null, true, "x"], "c": {}}, "d": [], "z": "\u00e9"}`; got != want {
		t.Errorf("re-formatted raw JSON = %s, want %s", got, want)
	}
	if got := string(appendPy(nil, json.RawMessage(`{"a":`))); got != "{}" {
		t.Errorf("invalid raw JSON = %s, want {}", got)
	}
}

// readCommands: one error line per bad line, blank lines skipped, an
// overlong line refused without losing the next one, and the last line
// taken even without a newline.
func TestReadCommands(t *testing.T) {
	input := "{\"kind\": \"ping\", \"ping_id\": 1}\r\n\n   \n" +
		"garbage\n" +
		`{"kind": "local", "name": "` + strings.Repeat("x", maxLineLength) + `"}` + "\n" +
		`{"kind": "allocate-code", "length": 3}` + "\n" +
		`{"kind": "session-close", "timeout": 1}`
	var out bytes.Buffer
	commands := make(chan session.Command, 10)
	readCommands(strings.NewReader(input), newFowldWriter(&out, "", nil), func(c session.Command) error { commands <- c; return nil })
	close(commands)
	var got []session.Command
	for c := range commands {
		got = append(got, c)
	}
	want := []session.Command{session.Ping{}, session.AllocateCode{Length: 3}, session.Close{Timeout: time.Second}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands = %#v, want %#v", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "not JSON") || !strings.Contains(lines[1], "longer than") {
		t.Fatalf("error lines:\n%s", out.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["kind"] != "error" || len(m) != 2 {
			t.Errorf("not an error line: %s", l)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, seed := range []string{
		`{"kind": "allocate-code", "length": 2}`,
		`{"kind": "set-code", "code": "7-foo-bar"}`,
		`{"kind": "local", "name": "web", "local_listen_port": 8080, "remote_connect_port": 80, "bind_interface": "127.0.0.1"}`,
		`{"kind": "remote", "name": "web", "remote_listen_port": 80, "local_connect_port": 8000, "connect_address": "localhost"}`,
		`{"kind": "session-close", "timeout": 3}`,
		`{"kind": "ping", "ping_id": 1}`,
		`garbage`, `{}`, `[]`, `null`, `{"kind": "nope"}`, `{"kind": "local", "name": "a\u0000"}`,
		"{\"kind\": \"remote\", \"name\": \"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := decodeCommand(line)
		if err != nil {
			if cmd != nil {
				t.Fatalf("both a command and an error: %#v, %v", cmd, err)
			}
			// The error line is one valid JSON line.
			out := errorLine(err.Error())
			if bytes.Count(out, []byte("\n")) != 1 || !json.Valid(out) {
				t.Fatalf("bad error line %q", out)
			}
			return
		}
		port := func(p int) bool { return p >= 0 && p <= 65535 }
		name := func(s string) bool {
			return s != "" && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
		}
		ipv4 := func(s string) bool { ip := net.ParseIP(s); return ip != nil && ip.To4() != nil }
		switch c := cmd.(type) {
		case session.AllocateCode:
			if c.Length < 0 || c.Length > maxCodeLength {
				t.Fatalf("length %d", c.Length)
			}
		case session.SetCode:
			if c.Code == "" {
				t.Fatal("empty code")
			}
		case session.AddLocal:
			if !name(c.Local.Name) || !port(c.Local.ListenPort) || !port(c.Local.RemoteConnectPort) || !ipv4(c.Local.BindAddr) {
				t.Fatalf("bad local %#v", c.Local)
			}
		case session.AddRemote:
			if !name(c.Remote.Name) || !port(c.Remote.ListenPort) || !port(c.Remote.ConnectPort) || !ipv4(c.Remote.Address) {
				t.Fatalf("bad remote %#v", c.Remote)
			}
		case session.Close:
			if c.Timeout < 0 {
				t.Fatalf("timeout %v", c.Timeout)
			}
		case session.Ping:
		default:
			t.Fatalf("unexpected command %#v", cmd)
		}
		if !json.Valid(line) {
			t.Fatalf("accepted invalid JSON %q", line)
		}
	})
}

// jsonSide is one Run session driven through pipes, as a controller
// drives fowld.
type jsonSide struct {
	name   string
	stdin  *io.PipeWriter
	done   chan error
	read   chan struct{} // closed once every output line is in lines
	mu     sync.Mutex
	lines  []map[string]any
	raw    []string
	signal chan struct{}
}

func startJSONSide(t *testing.T, name string, cfg session.Config) *jsonSide {
	t.Helper()
	s := &jsonSide{name: name, done: make(chan error, 1), read: make(chan struct{}), signal: make(chan struct{}, 1)}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s.stdin = inW
	go func() {
		defer close(s.read)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("%s: not a JSON line: %q", name, sc.Text())
			}
			s.mu.Lock()
			s.lines = append(s.lines, m)
			s.raw = append(s.raw, sc.Text())
			s.mu.Unlock()
			select {
			case s.signal <- struct{}{}:
			default:
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		err := Run(ctx, cfg, inR, outW)
		outW.Close()
		s.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("%s's output:\n%s", name, strings.Join(s.raw, "\n"))
			s.mu.Unlock()
		}
	})
	return s
}

func (s *jsonSide) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
}

// wait returns the first event of kind for which match (nil: any) holds.
func (s *jsonSide) wait(t *testing.T, kind string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		for _, m := range s.lines {
			if m["kind"] == kind && (match == nil || match(m)) {
				s.mu.Unlock()
				return m
			}
		}
		s.mu.Unlock()
		select {
		case <-s.signal:
		case <-deadline:
			t.Fatalf("%s: no %s event", s.name, kind)
			return nil
		}
	}
}

func (s *jsonSide) count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.lines {
		if m["kind"] == kind {
			n++
		}
	}
	return n
}

// sum adds up the "bytes" of kind's events for connection id.
func (s *jsonSide) sum(kind string, id float64) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0.0
	for _, m := range s.lines {
		if m["kind"] == kind && m["id"] == id {
			total += m["bytes"].(float64)
		}
	}
	return total
}

// end waits for Run to return and for its last line to be read (the
// pipe hands a line over before the reader has parsed it).
func (s *jsonSide) end(t *testing.T) error {
	t.Helper()
	deadline := time.After(20 * time.Second)
	var err error
	select {
	case err = <-s.done:
	case <-deadline:
		t.Fatalf("%s did not end", s.name)
	}
	select {
	case <-s.read:
	case <-deadline:
		t.Fatalf("%s's output was not read to its end", s.name)
	}
	return err
}

func withName(name string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["name"] == name || m["service_name"] == name }
}

// Two gander --json sessions over the fake mailbox, driven as fowld is:
// code, services both ways, a connection with its byte counts, bad input
// that changes nothing, refusals, and a session-close that ends both.
func TestRunJSONTwoSessions(t *testing.T) {
	server := mailboxtest.New(t)
	a := startJSONSide(t, "A", session.Config{MailboxURL: server.URL(), CodeLength: 2})
	b := startJSONSide(t, "B", session.Config{MailboxURL: server.URL()})

	if w := a.wait(t, "welcome", nil); w["url"] != server.URL() || len(w["welcome"].(map[string]any)) != 0 {
		t.Errorf("welcome = %v", w)
	}
	a.send(t, `{"kind": "ping", "ping_id": 1}`)
	a.wait(t, "error", func(m map[string]any) bool { return m["message"] == "Cannot send ping: not in Dilation" })
	a.send(t, `{"kind": "allocate-code", "length": 3}`)
	code := a.wait(t, "code-allocated", nil)["code"].(string)
	if strings.Count(code, "-") != 3 {
		t.Errorf("code %q has not 3 words", code)
	}
	a.send(t, `{"kind": "allocate-code"}`)
	a.wait(t, "error", func(m map[string]any) bool { return m["message"] == session.ErrCodeAlreadySet.Error() })
	b.wait(t, "welcome", nil)
	b.send(t, fmt.Sprintf(`{"kind": "set-code", "code": %q}`, code))
	a.send(t, `{"kind": "local", "name": "echo"}`)
	b.send(t, fmt.Sprintf(`{"kind": "remote", "name": "echo", "local_connect_port": %d}`, testkit.EchoServer(t)))
	b.send(t, `{"kind": "remote", "name": "secret"}`)

	va, vb := a.wait(t, "peer-connected", nil), b.wait(t, "peer-connected", nil)
	if va["verifier"] != vb["verifier"] || len(va["verifier"].(string)) != 64 {
		t.Errorf("verifiers %v and %v", va["verifier"], vb["verifier"])
	}
	if _, ok := va["versions"].(map[string]any)["gander"]; !ok {
		t.Errorf("A's peer versions %v", va["versions"])
	}
	if b.wait(t, "code-allocated", nil)["code"] != code {
		t.Error("B's code differs")
	}
	port := a.wait(t, "listening", withName("echo"))["listening_port"].(float64)
	b.wait(t, "awaiting-connect", withName("echo"))
	b.wait(t, "error", func(m map[string]any) bool {
		return m["message"] == `Service "secret" failed: No service permitted for name: secret`
	})
	a.wait(t, "error", func(m map[string]any) bool {
		return m["message"] == `Failed to listen on "secret": No service permitted for name: secret`
	})

	echo := func() {
		t.Helper()
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", int(port)))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "hello\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || line != "hello\n" {
			t.Fatalf("through the forward: %q, %v", line, err)
		}
	}
	echo()
	out := a.wait(t, "outgoing-connection", withName("echo"))
	a.wait(t, "outgoing-done", func(m map[string]any) bool { return m["id"] == out["id"] })
	in := b.wait(t, "incoming-connection", withName("echo"))
	b.wait(t, "incoming-done", func(m map[string]any) bool { return m["id"] == in["id"] })
	id := out["id"].(float64)
	if a.sum("bytes-in", id) != 6 || a.sum("bytes-out", id) != 6 {
		t.Errorf("A counted %v in, %v out, want 6 and 6", a.sum("bytes-in", id), a.sum("bytes-out", id))
	}
	if id := in["id"].(float64); b.sum("bytes-in", id) != 6 || b.sum("bytes-out", id) != 6 {
		t.Errorf("B counted %v in, %v out, want 6 and 6", b.sum("bytes-in", id), b.sum("bytes-out", id))
	}

	errorsBefore := a.count("error")
	bad := []string{`garbage`, `{}`, `[1]`, `{"kind": "nope"}`, `{"kind": "set-code"}`,
		`{"kind": "local", "name": 5}`, `{"kind": "session-close", "timeout": "soon"}`,
		`{"kind": "ping", "ping_id": 2}`, `{"kind": "remote", "name": "echo"}`}
	for _, line := range bad {
		a.send(t, line)
	}
	a.wait(t, "error", func(m map[string]any) bool {
		return m["message"] == "fledge(echo) when we already have a roost for that name"
	})
	if n := a.count("error") - errorsBefore; n != len(bad) {
		t.Errorf("%d error lines for %d bad lines", n, len(bad))
	}
	echo() // still working

	b.send(t, `{"kind": "session-close", "timeout": 10}`)
	for _, s := range []*jsonSide{a, b} {
		if err := s.end(t); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		s.mu.Lock()
		last := s.lines[len(s.lines)-1]
		s.mu.Unlock()
		if last["kind"] != "closed" || last["result"] != "happy" {
			t.Errorf("%s's last line is %v", s.name, last)
		}
	}
	if moods := server.Moods(); len(moods) != 2 || moods[0] != "happy" || moods[1] != "happy" {
		t.Errorf("moods = %v, want two happy", moods)
	}
}

func TestRunJSONCloseBeforeThePeerCame(t *testing.T) {
	server := mailboxtest.New(t, mailboxtest.WithMOTD("maintenance at noon"))
	s := startJSONSide(t, "A", session.Config{MailboxURL: server.URL(), CodeLength: 2})
	if w := s.wait(t, "welcome", nil); w["welcome"].(map[string]any)["motd"] != "maintenance at noon" {
		t.Errorf("welcome = %v", w)
	}
	s.send(t, `{"kind": "allocate-code"}`)
	s.wait(t, "code-allocated", nil)
	s.send(t, `{"kind": "session-close"}`)
	if err := s.end(t); err != nil {
		t.Fatal(err)
	}
	if closed := s.wait(t, "closed", nil); closed["result"] != "lonely" {
		t.Errorf("closed = %v", closed)
	}
}

func TestRunJSONWrongCode(t *testing.T) {
	server := mailboxtest.New(t)
	a := startJSONSide(t, "A", session.Config{MailboxURL: server.URL(), CodeLength: 2})
	a.send(t, `{"kind": "allocate-code"}`)
	code := a.wait(t, "code-allocated", nil)["code"].(string)
	nameplate, _, _ := strings.Cut(code, "-")
	b := startJSONSide(t, "B", session.Config{MailboxURL: server.URL(), Code: nameplate + "-wrong-words"})
	for _, s := range []*jsonSide{a, b} {
		if err := s.end(t); !errors.Is(err, session.ErrWrongCode) {
			t.Errorf("%s ended with %v", s.name, err)
		}
		s.wait(t, "closed", nil)
		s.wait(t, "error", func(m map[string]any) bool { return strings.Contains(m["message"].(string), "wrong code") })
	}
}

// failingWriter takes ok writes, then fails every write.
type failingWriter struct {
	mu     sync.Mutex
	ok     int
	writes int
}

var errBrokenPipe = errors.New("broken pipe (test)")

func (w *failingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.writes > w.ok {
		return 0, errBrokenPipe
	}
	return len(b), nil
}

// A write error on the output (EPIPE, a full disk) ends the session with
// that error, promptly, and nothing more is written (issue 11, finding 10).
func TestRunJSONStopsWhenOutputFails(t *testing.T) {
	testkit.CheckNoLeaks(t)
	for _, ok := range []int{0, 1} { // the welcome fails; the code line fails
		server := mailboxtest.New(t)
		out := &failingWriter{ok: ok}
		in, feed := io.Pipe()
		defer feed.Close()
		done := make(chan error, 1)
		go func() {
			done <- Run(context.Background(), session.Config{MailboxURL: server.URL(), CodeLength: 2, CloseTimeout: time.Second}, in, out)
		}()
		go feed.Write([]byte(`{"kind": "allocate-code"}` + "\n"))
		select {
		case err := <-done:
			if !errors.Is(err, ErrOutputFailed) || !errors.Is(err, errBrokenPipe) {
				t.Fatalf("Run: %v, want the write error", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run still runs after its output failed")
		}
		out.mu.Lock()
		if out.writes != ok+1 {
			t.Errorf("%d writes, want %d: nothing after the failure", out.writes, ok+1)
		}
		out.mu.Unlock()
		feed.Close()
	}
}
