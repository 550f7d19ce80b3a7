package dilation

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// L1 messages travel through the mailbox as "dilate-N" phases, JSON:
//
//	{"type": "please", "side": "<16 hex>", "use-version": "ged"}
//	{"type": "connection-hints", "hints": [<hint>, ...]}
//	{"type": "reconnect"}      Leader: the connection is gone, start over
//	{"type": "reconnecting"}   Follower: ready, new hints follow
//
// Unknown types are ignored, as the reference only logs them.

// Versions this implementation speaks, most preferred first. The names
// are Earthsea wizards; "ged" is the one every peer since 0.19 uses.
var supportedVersions = []string{"ged"}

// VersionFields are the keys Dilation adds to the wormhole's version
// message; pass them as wormhole.Config.VersionExtra on both sides.
func VersionFields() map[string]any {
	return map[string]any{
		"can-dilate": supportedVersions,
		"dilation-abilities": []map[string]string{
			{"type": "direct-tcp-v1"},
			{"type": "relay-v1"},
		},
	}
}

type l1Message struct {
	Type       string            `json:"type"`
	Side       string            `json:"side,omitempty"`
	UseVersion string            `json:"use-version,omitempty"`
	Hints      []json.RawMessage `json:"hints,omitempty"`
}

// hint is one way to reach a peer: a direct TCP address, or a transit
// relay (itself reached by direct TCP hints).
type hint struct {
	relay    bool
	host     string
	port     int
	priority float64
}

func (h hint) address() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

func (h hint) String() string {
	if h.relay {
		return "relay " + h.address()
	}
	return "direct " + h.address()
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

func encodeHints(hints []hint) []json.RawMessage {
	var out []json.RawMessage
	for _, h := range hints {
		direct := directHintJSON{Type: "direct-tcp-v1", Priority: h.priority, Hostname: h.host, Port: h.port}
		var b []byte
		if h.relay {
			b, _ = json.Marshal(relayHintJSON{Type: "relay-v1", Hints: []directHintJSON{direct}})
		} else {
			b, _ = json.Marshal(direct)
		}
		out = append(out, b)
	}
	return out
}

// parseHints keeps the hints gander can use and drops the rest (unknown
// types, Tor, malformed entries), as the reference's parse_hint does.
func parseHints(raw []json.RawMessage) []hint {
	var out []hint
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
				out = append(out, hint{host: d.Hostname, port: d.Port, priority: d.Priority})
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
					out = append(out, hint{relay: true, host: d.Hostname, port: d.Port, priority: d.Priority})
				}
			}
		}
	}
	return out
}

func validHint(d directHintJSON) bool {
	return d.Hostname != "" && d.Port > 0 && d.Port < 65536
}

// parseRelayLocation reads the reference's "tcp:HOST:PORT" relay form.
func parseRelayLocation(s string) (hint, error) {
	rest, ok := strings.CutPrefix(s, "tcp:")
	if !ok {
		return hint{}, fmt.Errorf("transit relay %q: want tcp:HOST:PORT", s)
	}
	host, portText, err := net.SplitHostPort(rest)
	if err != nil {
		return hint{}, fmt.Errorf("transit relay %q: %w", s, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 || host == "" {
		return hint{}, fmt.Errorf("transit relay %q: bad host or port", s)
	}
	return hint{relay: true, host: host, port: port}, nil
}

// chooseVersion picks the first of our versions the peer also speaks, or
// "" if none.
func chooseVersion(peer []string) string {
	for _, mine := range supportedVersions {
		for _, theirs := range peer {
			if mine == theirs {
				return mine
			}
		}
	}
	return ""
}
