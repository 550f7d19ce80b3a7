package dilation

import "encoding/json"

// L1 messages travel through the mailbox as "dilate-N" phases, JSON:
//
//	{"type": "please", "side": "<16 hex>", "use-version": "ged"}
//	{"type": "connection-hints", "hints": [<hint>, ...]}   (transit.EncodeHints)
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

// flowAbilitiesKey is the version key under which gander lists its own
// Dilation abilities; the reference ignores version keys it does not know.
const flowAbilitiesKey = "gander-dilation-abilities"

// GanderVersionFields are VersionFields plus gander's own abilities
// (gander-flow-v1: per-subchannel flow control, see flow.go), which only
// another gander acts on; gander passes these, so that two gander peers
// find each other while a reference peer sees the usual Dilation.
func GanderVersionFields() map[string]any {
	f := VersionFields()
	f[flowAbilitiesKey] = []string{flowAbility}
	return f
}

type l1Message struct {
	Type       string            `json:"type"`
	Side       string            `json:"side,omitempty"`
	UseVersion string            `json:"use-version,omitempty"`
	Hints      []json.RawMessage `json:"hints,omitempty"`
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
