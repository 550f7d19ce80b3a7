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
