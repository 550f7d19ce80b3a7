package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// toxiproxy is a toxiproxy-server (Shopify's TCP proxy with injectable
// faults), used here as a delay line on loopback: the WAN benchmark puts it
// between gander and the transit relay, and between ssh and sshd.
// ./e2e/test.sh installs it from the Go module proxy and names it in
// GANDER_TOXIPROXY.
type toxiproxy struct {
	api    string // http://127.0.0.1:PORT, its control API
	client http.Client
}

// toxiproxyPath is the server's binary, or "" when it is not installed.
func toxiproxyPath() string {
	if p := os.Getenv("GANDER_TOXIPROXY"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := exec.LookPath("toxiproxy-server")
	return p
}

// startToxiproxy runs toxiproxy-server on a free loopback port until the
// benchmark ends, or skips when it is not installed.
func startToxiproxy(b *testing.B) *toxiproxy {
	b.Helper()
	bin := toxiproxyPath()
	if bin == "" {
		b.Skip("toxiproxy-server not installed (./e2e/test.sh installs it with go install)")
	}
	port := strconv.Itoa(freePort(b))
	p := startProcess(b, scratch, bin, "-host", "127.0.0.1", "-port", port)
	waitListening(b, "127.0.0.1:"+port, p)
	return &toxiproxy{api: "http://127.0.0.1:" + port, client: http.Client{Timeout: 10 * time.Second}}
}

// call POSTs body as JSON to path and decodes the answer into answer (if
// not nil); anything but 200 or 201 fails the benchmark.
func (t *toxiproxy) call(b *testing.B, path string, body, answer any) {
	b.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := t.client.Post(t.api+path, "application/json", bytes.NewReader(data))
	if err != nil {
		b.Fatalf("toxiproxy %s: %v", path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated) {
		b.Fatalf("toxiproxy %s: %s %q, %v", path, resp.Status, got, err)
	}
	if answer != nil {
		if err := json.Unmarshal(got, answer); err != nil {
			b.Fatalf("toxiproxy %s: %q: %v", path, got, err)
		}
	}
}

// delayLine makes a new proxy to upstream on a free loopback port that
// delays what goes toward upstream by up and what comes back by down
// (whole milliseconds: toxiproxy's unit), and returns its address.
func (t *toxiproxy) delayLine(b *testing.B, name, upstream string, up, down time.Duration) string {
	b.Helper()
	var proxy struct {
		Listen string `json:"listen"`
	}
	t.call(b, "/proxies", map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true}, &proxy)
	for stream, d := range map[string]time.Duration{"upstream": up, "downstream": down} {
		if d == 0 {
			continue
		}
		t.call(b, "/proxies/"+name+"/toxics", map[string]any{
			"name": "delay_" + stream, "type": "latency", "stream": stream, "toxicity": 1.0,
			"attributes": map[string]any{"latency": d.Milliseconds(), "jitter": 0},
		}, nil)
	}
	if proxy.Listen == "" {
		b.Fatalf("toxiproxy made %s without saying where it listens", name)
	}
	return proxy.Listen
}

// relayNoDelayScript runs `twist` with the transit relay's connections set
// to TCP_NODELAY, which the relay (magic-wormhole-transit-relay 0.3, as
// deployed) does not do: without it the relay's kernel holds a small write
// back while an earlier one is unacknowledged (Nagle), up to the peer's
// delayed ACK (40 ms on Linux). The WAN benchmark runs gander through both
// relays, to tell that wait apart from gander's own.
const relayNoDelayScript = `import sys
from twisted.application.twist._twist import Twist
from wormhole_transit_relay import transit_server

made = transit_server.TransitConnection.connectionMade
def connection_made(self):
    made(self)
    self.transport.setTcpNoDelay(True)
transit_server.TransitConnection.connectionMade = connection_made
sys.argv[0] = "twist"
sys.exit(Twist.main())
`

// startRelayNoDelay is startRelay with TCP_NODELAY on the relay's
// connections.
func startRelayNoDelay(b *testing.B) *transitRelay {
	b.Helper()
	dir := b.TempDir()
	script := filepath.Join(dir, "twist_nodelay.py")
	if err := os.WriteFile(script, []byte(relayNoDelayScript), 0o600); err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(freePort(b))
	p := startProcess(b, dir, venvBin(b, "python"), script, "--log-format=text",
		"transitrelay", "--port=tcp:"+port+":interface=127.0.0.1")
	p.waitFor(b, regexp.MustCompile(`(?m) starting on `+port+`$`), serverStartTimeout)
	addr := "127.0.0.1:" + port
	return &transitRelay{Addr: addr, Hint: "tcp:" + addr}
}
