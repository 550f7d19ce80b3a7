package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/session/transfer"
)

// What we advertise: fowl's entry exactly as before (fowl 26.8 sees what
// it always saw), and every gander feature under "gander".
func TestAppVersions(t *testing.T) {
	ours, err := json.Marshal(AppVersions())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"fowl":{"features":["core-v1"]},"gander":{"features":["forwards-v1","files-v1","terminal-v1"]}}`
	if string(ours) != want {
		t.Errorf("AppVersions() = %s, want %s", ours, want)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(ours, &top); err != nil || string(top["fowl"]) != `{"features":["core-v1"]}` {
		t.Errorf("fowl's entry = %s (%v), want it byte for byte as before", top["fowl"], err)
	}
	// The forwards-only advertisement, what gander sent before files-v1.
	old, _ := json.Marshal(forwards.AppVersions())
	if string(old) != `{"fowl":{"features":["core-v1"]},"gander":{"features":["forwards-v1"]}}` {
		t.Errorf("forwards.AppVersions() = %s", old)
	}
	if p := ParsePeer(ours); p.Kind != PeerGander || !p.Accepts(FeatureFiles) || !p.Accepts(FeatureForwards) {
		t.Errorf("our own versions parse as %+v", p)
	}
}

func TestParsePeer(t *testing.T) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf(`"f%d"`, i)
	}
	first32 := make([]string, 32)
	for i := range first32 {
		first32[i] = fmt.Sprintf("f%d", i)
	}
	for _, tc := range []struct {
		name     string
		versions string
		kind     PeerKind
		features []string
		files    bool // Accepts(FeatureFiles)
	}{
		{"fowl 26.8", `{"fowl":{"features":["core-v1"]}}`, PeerFowl, []string{"core-v1"}, false},
		{"this gander", `{"fowl":{"features":["core-v1"]},"gander":{"features":["forwards-v1","files-v1","terminal-v1"]}}`,
			PeerGander, []string{"forwards-v1", "files-v1", "terminal-v1"}, true},
		{"a gander before files-v1", `{"fowl":{"features":["core-v1"]},"gander":{"features":["forwards-v1"]}}`,
			PeerGander, []string{"forwards-v1"}, false},
		{"a later gander", `{"gander":{"features":["forwards-v1","files-v1","terminal-v1"],"extra":{"x":1}}}`,
			PeerGander, []string{"forwards-v1", "files-v1", "terminal-v1"}, true},
		{"gander entry without features", `{"gander":{"version":"1"}}`, PeerGander, nil, false},
		{"gander entry not an object", `{"gander":"test"}`, PeerGander, nil, false},
		{"gander null", `{"gander":null}`, PeerGander, nil, false},
		{"features not a list", `{"gander":{"features":"files-v1"}}`, PeerGander, nil, false},
		{"features of every type", `{"gander":{"features":[1,null,{"a":"files-v1"},["files-v1"],true,"files-v1"]}}`,
			PeerGander, []string{"files-v1"}, true},
		{"repeated features", `{"gander":{"features":["files-v1","files-v1","files-v1"]}}`,
			PeerGander, []string{"files-v1"}, true},
		{"junk names", `{"gander":{"features":["\u001b[31mred","FILES-V1","files v1","","` + strings.Repeat("a", 65) + `","ok-1"]}}`,
			PeerGander, []string{"ok-1"}, false},
		{"a flood of features", `{"gander":{"features":[` + strings.Join(many, ",") + `]}}`, PeerGander, first32, false},
		{"fowl claiming files", `{"fowl":{"features":["core-v1","files-v1"]}}`, PeerFowl, []string{"core-v1", "files-v1"}, false},
		{"empty", `{}`, PeerFowl, nil, false},
		{"nothing", ``, PeerFowl, nil, false},
		{"null", `null`, PeerFowl, nil, false},
		{"a list", `["gander"]`, PeerFowl, nil, false},
		{"a string", `"gander"`, PeerFowl, nil, false},
		{"not JSON", `{"gander":`, PeerFowl, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ParsePeer([]byte(tc.versions))
			if p.Kind != tc.kind || !slices.Equal(p.Features, tc.features) {
				t.Errorf("ParsePeer = %v %q, want %v %q", p.Kind, p.Features, tc.kind, tc.features)
			}
			if p.Accepts(FeatureFiles) != tc.files {
				t.Errorf("Accepts(files) = %v, want %v", !tc.files, tc.files)
			}
			if !p.Accepts(FeatureForwards) {
				t.Error("every peer speaks fowl's forwards")
			}
			for _, f := range tc.features {
				if !p.Has(f) {
					t.Errorf("Has(%q) false", f)
				}
			}
			// The one answer to "is it gander", wherever it is asked.
			if got := forwards.PeerIsGander([]byte(tc.versions)); got != (tc.kind == PeerGander) || PeerIsGander([]byte(tc.versions)) != got {
				t.Errorf("PeerIsGander disagrees with ParsePeer: %v", got)
			}
		})
	}
}

func TestPeerLacksError(t *testing.T) {
	fowl := peerLacks(Peer{Kind: PeerFowl}, FeatureFiles)
	if fowl != ErrPeerCannotFiles {
		t.Errorf("a fowl peer's missing files: %v, want ErrPeerCannotFiles as before", fowl)
	}
	old := peerLacks(ParsePeer([]byte(`{"gander":{"features":["forwards-v1"]}}`)), FeatureFiles)
	var lacks *PeerLacksError
	if !errors.Is(old, ErrPeerCannotFiles) || !errors.As(old, &lacks) || lacks.Feature != FeatureFiles || lacks.Peer != PeerGander {
		t.Errorf("an older gander's missing files: %#v", old)
	}
	if msg := old.Error(); !strings.Contains(msg, "gander") || !strings.Contains(msg, FeatureFiles) {
		t.Errorf("unreadable reason %q", msg)
	}
	if errors.Is(&PeerLacksError{Peer: PeerGander, Feature: "terminal-v1"}, ErrPeerCannotFiles) {
		t.Error("a missing terminal is not missing files")
	}
}

// Every command and event of a subprotocol is its alone; every feature
// is a name ParsePeer keeps.
func TestSubprotocolTable(t *testing.T) {
	commands, events, features := map[reflect.Type]string{}, map[reflect.Type]string{}, map[string]bool{}
	listens := map[string]string{}
	for _, s := range subprotocols {
		if !featureName(s.feature) || features[s.feature] || featureAbout[s.feature] == "" {
			t.Errorf("%s: feature %q unusable, repeated or unexplained", s.name, s.feature)
		}
		features[s.feature] = true
		for _, l := range s.listens {
			if other, ok := listens[l]; ok {
				t.Errorf("both %s and %s listen for %q", other, s.name, l)
			}
			listens[l] = s.name
		}
		if s.start == nil || s.handle == nil || len(s.listens) == 0 {
			t.Errorf("%s: incomplete row", s.name)
		}
		for _, c := range s.commands {
			if other, ok := commands[reflect.TypeOf(c)]; ok {
				t.Errorf("%T is both %s's and %s's", c, other, s.name)
			}
			commands[reflect.TypeOf(c)] = s.name
			if commandOwner(c) != s {
				t.Errorf("commandOwner(%T) is not %s", c, s.name)
			}
		}
		for _, e := range s.events {
			if other, ok := events[reflect.TypeOf(e)]; ok {
				t.Errorf("%T is both %s's and %s's", e, other, s.name)
			}
			events[reflect.TypeOf(e)] = s.name
		}
	}
	for _, c := range []Command{AllocateCode{}, SetCode{}, ListNameplates{}, Ping{}, Close{}} {
		if commandOwner(c) != nil {
			t.Errorf("%T is the session's own", c)
		}
	}
}

// A gander peer that does not advertise files-v1 (one from before it)
// gets no file offers read, and our sends to it fail saying why; ports
// are forwarded as ever.
func TestPeerWithoutFilesGetsNoFiles(t *testing.T) {
	saveDir := t.TempDir()
	receiver, peer, cmds := oneSessionAndAFakePeerWith(t, Config{AcceptFiles: true, SaveDir: saveDir},
		forwards.AppVersions())
	if p := waitEvent[PeerConnected](t, receiver).Peer; p.Kind != PeerGander || p.Accepts(FeatureFiles) {
		t.Fatalf("PeerConnected.Peer = %+v, want a gander without files", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := peer.Open(ctx, transfer.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.Write(offerFrame("unwanted.bin", 10))

	cmds <- SendFiles{Paths: []string{saveDir}}
	failed := waitEvent[CommandFailed](t, receiver)
	var lacks *PeerLacksError
	if !errors.Is(failed.Err, ErrPeerCannotFiles) || !errors.As(failed.Err, &lacks) || lacks.Feature != FeatureFiles {
		t.Fatalf("SendFiles failed with %v, want a PeerLacksError for files", failed.Err)
	}
	// Nobody reads the offer: no answer comes, no transfer starts.
	answered := make(chan byte, 1)
	go func() {
		if typ, _, err := readFrame(sc); err == nil {
			answered <- typ
		}
		close(answered)
	}()
	select {
	case typ, ok := <-answered:
		if ok {
			t.Errorf("the offer got frame %d; want nothing", typ)
		}
	case <-time.After(time.Second):
	}
	sc.Close()
	<-answered
	receiver.mu.Lock()
	defer receiver.mu.Unlock()
	for _, e := range receiver.events {
		switch e.(type) {
		case TransferOffered, TransferAccepted, TransferProgress, TransferFinished, TransfersRefused:
			t.Errorf("a transfer event from a peer without files: %#v", e)
		}
	}
}

// Sends asked for before a fowl peer came fail once it is there, as
// before the registry: ErrPeerCannotFiles itself.
func TestSendsWaitingForAFowlPeerFail(t *testing.T) {
	receiver, _, _ := oneSessionAndAFakePeerWith(t, Config{}, map[string]any{"fowl": map[string]any{"features": []string{"core-v1"}}},
		SendFiles{Paths: []string{t.TempDir()}})
	if p := waitEvent[PeerConnected](t, receiver).Peer; p.Kind != PeerFowl || !p.Has("core-v1") {
		t.Fatalf("PeerConnected.Peer = %+v, want fowl", p)
	}
	if err := waitEvent[CommandFailed](t, receiver).Err; err != ErrPeerCannotFiles {
		t.Fatalf("SendFiles to fowl failed with %v, want ErrPeerCannotFiles", err)
	}
}
