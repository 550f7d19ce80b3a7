package session

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gander-pair/gander/forwards"
)

// What each side supports travels in one place, the "app_versions" of the
// version message: AppVersions is what we send, built from the
// subprotocols' features (subprotocols.go), and ParsePeer reads the
// peer's into a Peer, once, when the peer proves the code. What the Peer
// has decides which subprotocols start and what frontends offer.

// Features a gander peer lists under "gander" in its app_versions.
const (
	FeatureForwards = forwards.Feature // port forwarding (fowl's protocol)
	FeatureFiles    = "files-v1"       // file transfer (session/transfer)
)

// featureAbout says what each feature is, for people (PeerLacksError).
var featureAbout = map[string]string{
	FeatureForwards: "port forwarding",
	FeatureFiles:    "file transfer",
	FeatureTerminal: "shared terminal",
}

// Bounds on what ParsePeer keeps of a peer's features: anything beyond
// is dropped, not an error, so that a hostile or future peer cannot make
// a frontend show junk.
const (
	maxPeerFeatures    = 32
	maxPeerFeatureName = 64
)

// PeerKind is which program the peer is.
type PeerKind int

const (
	// PeerFowl: fowl, or anything without a "gander" entry (fowl's
	// protocol is all such a peer is assumed to speak).
	PeerFowl PeerKind = iota
	// PeerGander: the app_versions have a "gander" entry.
	PeerGander
)

func (k PeerKind) String() string {
	if k == PeerGander {
		return "gander"
	}
	return "fowl"
}

// Peer is what the peer said of itself in its app_versions.
type Peer struct {
	Kind PeerKind
	// Features are those it lists: gander's own for a gander peer
	// (FeatureForwards, FeatureFiles, ...), fowl's ("core-v1") for fowl.
	// Only short printable names are kept, each once, at most 32.
	Features []string
}

// Has reports whether the peer lists feature.
func (p Peer) Has(feature string) bool { return slices.Contains(p.Features, feature) }

// Accepts reports whether the peer runs subprotocols of feature: fowl's
// protocol (FeatureForwards) with every peer, others with a gander peer
// that lists them.
func (p Peer) Accepts(feature string) bool {
	return feature == FeatureForwards || p.Kind == PeerGander && p.Has(feature)
}

// ParsePeer reads a peer's app_versions (the raw JSON). It never fails:
// what it cannot read says less (a fowl peer, no features).
func ParsePeer(appVersions []byte) Peer {
	var top map[string]json.RawMessage
	if json.Unmarshal(appVersions, &top) != nil {
		return Peer{}
	}
	p := Peer{Kind: PeerFowl}
	entry, ok := top["gander"]
	if ok {
		p.Kind = PeerGander
	} else {
		entry = top["fowl"]
	}
	var e struct{ Features []json.RawMessage }
	if json.Unmarshal(entry, &e) != nil {
		return p
	}
	for _, raw := range e.Features {
		var f string
		if json.Unmarshal(raw, &f) != nil || !featureName(f) || slices.Contains(p.Features, f) {
			continue
		}
		if len(p.Features) == maxPeerFeatures {
			break
		}
		p.Features = append(p.Features, f)
	}
	return p
}

// featureName: a feature name is short and made of [a-z0-9._-].
func featureName(f string) bool {
	if f == "" || len(f) > maxPeerFeatureName {
		return false
	}
	for _, r := range f {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// PeerIsGander reports whether a peer's app_versions (PeerConnected)
// say it is gander, not fowl; PeerConnected.Peer says more.
func PeerIsGander(appVersions []byte) bool { return ParsePeer(appVersions).Kind == PeerGander }

// AppVersions is what gander sends as its app_versions: fowl's entry as
// fowl sends it, and a "gander" entry listing every subprotocol's
// feature. Tests that play a gander peer send it too.
func AppVersions() map[string]any {
	var features []string
	for _, s := range subprotocols {
		features = append(features, s.feature)
	}
	return forwards.AppVersions(features...)
}

// PeerLacksError is a command for a subprotocol the peer does not run:
// errors.Is(err, ErrPeerCannotFiles) for files.
type PeerLacksError struct {
	Peer    PeerKind
	Feature string
}

func (e *PeerLacksError) Error() string {
	about := cmp.Or(featureAbout[e.Feature], e.Feature)
	if e.Peer == PeerFowl {
		return fmt.Sprintf("the peer is fowl, which has no %s (only gander does)", about)
	}
	return fmt.Sprintf("the peer's gander has no %s: it does not advertise %s (an older version?)", about, e.Feature)
}

// Is makes a fowl peer's missing files the ErrPeerCannotFiles of before.
func (e *PeerLacksError) Is(target error) bool {
	return target == ErrPeerCannotFiles && e.Feature == FeatureFiles
}

// peerLacks is the error for feature, which the peer does not accept:
// for a fowl peer lacking files, ErrPeerCannotFiles itself, as before.
func peerLacks(p Peer, feature string) error {
	if p.Kind == PeerFowl && feature == FeatureFiles {
		return ErrPeerCannotFiles
	}
	return &PeerLacksError{Peer: p.Kind, Feature: feature}
}
