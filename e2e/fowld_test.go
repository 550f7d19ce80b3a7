package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// gander --json against the real fowld 26.8, both driven as a fowld
// controller drives fowld (fowl's frontend protocol: JSON lines on stdin,
// JSON lines on stdout).

// event is one JSON line of a process's stdout.
type event map[string]any

func (e event) str(key string) string { s, _ := e[key].(string); return s }

func (e event) num(key string) int { n, _ := e[key].(float64); return int(n) }

// jsonLines parses p's stdout: the JSON objects, and the lines that are not
// one.
func jsonLines(p *process) (events []event, bad []string) {
	for line := range strings.Lines(p.stdoutText()) {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e == nil {
			bad = append(bad, line)
			continue
		}
		events = append(events, e)
	}
	return events, bad
}

// waitEvent waits for the first event of kind for which match (nil: any)
// holds, and fails the test if p exits, or timeout passes, without one.
func waitEvent(t *testing.T, p *process, kind string, match func(event) bool, timeout time.Duration) event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		events, _ := jsonLines(p)
		for _, e := range events {
			if e.str("kind") == kind && (match == nil || match(e)) {
				return e
			}
		}
		select {
		case <-changed:
		case <-p.done:
			events, _ := jsonLines(p)
			for _, e := range events {
				if e.str("kind") == kind && (match == nil || match(e)) {
					return e
				}
			}
			t.Fatalf("%s exited (%v) without a %q event", p.name, p.err, kind)
		case <-deadline.C:
			t.Fatalf("%s: no %q event within %v", p.name, kind, timeout)
		}
	}
}

func countKind(p *process, kind string) int {
	events, _ := jsonLines(p)
	n := 0
	for _, e := range events {
		if e.str("kind") == kind {
			n++
		}
	}
	return n
}

// sumBytes adds up the "bytes" of kind's events for connection id.
func sumBytes(p *process, kind string, id int) int {
	events, _ := jsonLines(p)
	total := 0
	for _, e := range events {
		if e.str("kind") == kind && e.num("id") == id {
			total += e.num("bytes")
		}
	}
	return total
}

func named(name string) func(event) bool {
	return func(e event) bool { return e.str("name") == name || e.str("service_name") == name }
}

func withID(id int) func(event) bool {
	return func(e event) bool { return e.num("id") == id }
}

func command(t *testing.T, p *process, line string) {
	t.Helper()
	p.writeStdin(t, line+"\n")
}

func TestFowldProtocolGanderWithFowld(t *testing.T) {
	mailbox := startMailbox(t)
	// fowld has no relay option (it always offers the public relay,
	// unreachable in the test namespace); gander is given a dead one.
	g := startProcess(t, scratch, ganderBin(t), "--json", "--mailbox", mailbox.URL, "--relay", "tcp:127.0.0.1:1")
	f := startProcess(t, scratch, venvBin(t, "fowld"), "--mailbox", mailbox.URL)
	for _, p := range []*process{g, f} {
		if w := waitEvent(t, p, "welcome", nil, 30*time.Second); w.str("url") != mailbox.URL {
			t.Errorf("%s's welcome: %v", p.name, w)
		}
	}

	command(t, g, `{"kind": "allocate-code", "length": 2}`)
	code := waitEvent(t, g, "code-allocated", nil, 30*time.Second).str("code")
	command(t, f, fmt.Sprintf(`{"kind": "set-code", "code": %q}`, code))

	// "up": the daemon runs on fowld's side, gander listens for it.
	// "down": the daemon runs on gander's side, fowld listens for it.
	upDaemon, downDaemon := testkit.UpperEchoServer(t), testkit.UpperEchoServer(t)
	command(t, g, `{"kind": "local", "name": "up"}`)
	command(t, f, `{"kind": "local", "name": "down"}`)
	command(t, f, fmt.Sprintf(`{"kind": "remote", "name": "up", "local_connect_port": %d}`, upDaemon))
	command(t, g, fmt.Sprintf(`{"kind": "remote", "name": "down", "local_connect_port": %d}`, downDaemon))

	gp, fp := waitEvent(t, g, "peer-connected", nil, 60*time.Second), waitEvent(t, f, "peer-connected", nil, 60*time.Second)
	if v := gp.str("verifier"); len(v) != 64 || v != fp.str("verifier") {
		t.Errorf("verifiers: gander %q, fowld %q", v, fp.str("verifier"))
	}
	if versions, _ := gp["versions"].(map[string]any); versions["fowl"] == nil {
		t.Errorf("gander reports the peer's versions as %v", gp["versions"])
	}
	if versions, _ := fp["versions"].(map[string]any); versions["gander"] == nil || versions["fowl"] == nil {
		t.Errorf("fowld reports gander's versions as %v", fp["versions"])
	}
	if c := waitEvent(t, f, "code-allocated", nil, 10*time.Second).str("code"); c != code {
		t.Errorf("fowld's code %q, gander's %q", c, code)
	}

	upPort := waitEvent(t, g, "listening", named("up"), 30*time.Second).num("listening_port")
	if a := waitEvent(t, f, "awaiting-connect", named("up"), 30*time.Second); a.num("local_port") != upDaemon {
		t.Errorf("fowld awaits connections for up at %v, the daemon is at %d", a, upDaemon)
	}
	downPort := waitEvent(t, f, "listening", named("down"), 30*time.Second).num("listening_port")
	if a := waitEvent(t, g, "awaiting-connect", named("down"), 30*time.Second); a.num("local_port") != downDaemon {
		t.Errorf("gander awaits connections for down at %v, the daemon is at %d", a, downDaemon)
	}

	talk := func(port int, line string) {
		t.Helper()
		got, err := askEcho("127.0.0.1:"+strconv.Itoa(port), line)
		if err != nil || got != strings.ToUpper(line)+"\n" {
			t.Fatalf("%q through port %d: %q, %v", line, port, got, err)
		}
	}

	// Through gander's listener to fowld's daemon: an outgoing connection
	// for gander, an incoming one for fowld, with their byte counts.
	talk(upPort, "quack")
	out := waitEvent(t, g, "outgoing-connection", named("up"), 10*time.Second).num("id")
	waitEvent(t, g, "outgoing-done", withID(out), 30*time.Second)
	in := waitEvent(t, f, "incoming-connection", named("up"), 10*time.Second).num("id")
	waitEvent(t, f, "incoming-done", withID(in), 30*time.Second)
	if in, out := sumBytes(g, "bytes-in", out), sumBytes(g, "bytes-out", out); in != 6 || out != 6 {
		t.Errorf("gander counted %d bytes in, %d out for its outgoing connection, want 6 and 6", in, out)
	}
	if in, out := sumBytes(f, "bytes-in", in), sumBytes(f, "bytes-out", in); in != 6 || out != 6 {
		t.Errorf("fowld counted %d bytes in, %d out for its incoming connection, want 6 and 6", in, out)
	}

	// Through fowld's listener to gander's daemon: the other way round.
	talk(downPort, "honk")
	fout := waitEvent(t, f, "outgoing-connection", named("down"), 10*time.Second).num("id")
	waitEvent(t, f, "outgoing-done", withID(fout), 30*time.Second)
	gin := waitEvent(t, g, "incoming-connection", named("down"), 10*time.Second).num("id")
	waitEvent(t, g, "incoming-done", withID(gin), 30*time.Second)
	if in, out := sumBytes(g, "bytes-in", gin), sumBytes(g, "bytes-out", gin); in != 5 || out != 5 {
		t.Errorf("gander counted %d bytes in, %d out for its incoming connection, want 5 and 5", in, out)
	}

	// Bad lines: one error line each, and nothing else changes.
	before := countKind(g, "error")
	bad := []string{
		`garbage`,
		`{}`,
		`[]`,
		`{"kind": "nope"}`,
		`{"kind": "set-code"}`,
		`{"kind": "allocate-code", "length": "2"}`,
		`{"kind": "local", "name": 5}`,
		`{"kind": "remote", "name": "x", "local_connect_port": "80"}`,
		`{"kind": "session-close", "timeout": "soon"}`,
		`{"kind": "ping", "ping_id": 1}`,       // valid, but fowld 26.8 fails every ping too
		`{"kind": "remote", "name": "up"}`,     // "up" is ours to listen for
		`{"kind": "allocate-code"}`,            // the code is set
		`{"kind": "remote", "name": "secret"}`, // fowld refuses it
	}
	for _, line := range bad {
		command(t, g, line)
	}
	waitEvent(t, g, "error", func(e event) bool {
		return e.str("message") == `Service "secret" failed: No service permitted for name: secret`
	}, 30*time.Second)
	waitEvent(t, f, "error", func(e event) bool {
		return e.str("message") == `Failed to listen on "secret": No service permitted for name: secret`
	}, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := countKind(g, "error") - before; n != len(bad) {
		t.Errorf("%d error lines for %d bad lines", n, len(bad))
	}
	if g.exited() || f.exited() {
		t.Fatal("a bad line ended the session")
	}
	talk(upPort, "still there")
	talk(downPort, "and back")

	// gander closes the session; fowld answers and both end cleanly.
	command(t, g, `{"kind": "session-close", "timeout": 10}`)
	for _, p := range []*process{g, f} {
		if closed := waitEvent(t, p, "closed", nil, 30*time.Second); closed.str("result") != "happy" {
			t.Errorf("%s: %v", p.name, closed)
		}
		if err := p.wait(t, 30*time.Second); err != nil {
			t.Errorf("%s exited with %v", p.name, err)
		}
	}
	events, notJSON := jsonLines(g)
	if len(notJSON) > 0 {
		t.Errorf("gander wrote lines that are not JSON objects: %q", notJSON)
	}
	if last := events[len(events)-1]; last.str("kind") != "closed" {
		t.Errorf("gander's last line is %v, not closed", last)
	}
}
