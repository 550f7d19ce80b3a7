package transit

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Hint is one way to reach a peer: a direct TCP address, or a transit
// relay (itself reached by a direct TCP address). Dilation's
// "connection-hints" message and classic Transit's "transit" message carry
// them in the same JSON form (see EncodeHints).
type Hint struct {
	Relay    bool
	Host     string
	Port     int
	Priority float64 // as the peer sent it; gander dials every hint alike
}

// Address is the hint's host:port, for dialling.
func (h Hint) Address() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// String is how a hint is shown: "direct 10.0.0.2:4444" or "relay
// transit.magic-wormhole.io:4001".
func (h Hint) String() string {
	if h.Relay {
		return "relay " + h.Address()
	}
	return "direct " + h.Address()
}

type directHintJSON struct {
	Type     string  `json:"type"`
	Priority float64 `json:"priority"`
	Hostname string  `json:"hostname"`
	Port     int     `json:"port"`
}

type relayHintJSON struct {
	Type  string           `json:"type"`
	Hints []directHintJSON `json:"hints"`
}

// EncodeHints writes hints as the reference's encode_hint does: a direct
// hint as {"type": "direct-tcp-v1", ...}, a relay as {"type": "relay-v1",
// "hints": [<its direct hint>]}.
func EncodeHints(hints []Hint) []json.RawMessage {
	var out []json.RawMessage
	for _, h := range hints {
		direct := directHintJSON{Type: "direct-tcp-v1", Priority: h.Priority, Hostname: h.Host, Port: h.Port}
		var b []byte
		if h.Relay {
			b, _ = json.Marshal(relayHintJSON{Type: "relay-v1", Hints: []directHintJSON{direct}})
		} else {
			b, _ = json.Marshal(direct)
		}
		out = append(out, b)
	}
	return out
}

// ParseHints keeps the hints gander can use and drops the rest (unknown
// types, Tor, malformed entries), as the reference's parse_hint does.
func ParseHints(raw []json.RawMessage) []Hint {
	var out []Hint
	for _, r := range raw {
		var probe struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(r, &probe) != nil {
			continue
		}
		switch probe.Type {
		case "direct-tcp-v1":
			var d directHintJSON
			if json.Unmarshal(r, &d) == nil && validHint(d) {
				out = append(out, Hint{Host: d.Hostname, Port: d.Port, Priority: d.Priority})
			}
		case "relay-v1":
			// Each nested hint is decoded on its own, so that one bad
			// entry does not lose its siblings.
			var rh struct {
				Hints []json.RawMessage `json:"hints"`
			}
			if json.Unmarshal(r, &rh) != nil {
				continue
			}
			for _, nested := range rh.Hints {
				var d directHintJSON
				if json.Unmarshal(nested, &d) == nil && d.Type == "direct-tcp-v1" && validHint(d) {
					out = append(out, Hint{Relay: true, Host: d.Hostname, Port: d.Port, Priority: d.Priority})
				}
			}
		}
	}
	return out
}

func validHint(d directHintJSON) bool {
	return d.Hostname != "" && d.Port > 0 && d.Port < 65536
}

// ParseRelayLocation reads the reference's "tcp:HOST:PORT" relay form
// into a relay hint.
func ParseRelayLocation(s string) (Hint, error) {
	rest, ok := strings.CutPrefix(s, "tcp:")
	if !ok {
		return Hint{}, fmt.Errorf("transit relay %q: want tcp:HOST:PORT", s)
	}
	host, portText, err := net.SplitHostPort(rest)
	if err != nil {
		return Hint{}, fmt.Errorf("transit relay %q: %w", s, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 || host == "" {
		return Hint{}, fmt.Errorf("transit relay %q: bad host or port", s)
	}
	return Hint{Relay: true, Host: host, Port: port}, nil
}
