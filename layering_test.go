package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The house's layering (ARCHITECTURE.md), checked over `go list`: a
// package imports only packages of the layers below its own, or leaf
// helpers; frontends import only session and leaf helpers. A violation
// fails the suite.

const module = "github.com/gander-pair/gander"

// layers, from the top down. A path ending in "/..." covers the packages
// under it.
var layers = []struct {
	name     string
	packages []string
}{
	{"command", []string{""}},
	{"frontends", []string{"frontend/..."}},
	{"session", []string{"session"}},
	// The subprotocols run on Dilation subchannels; classic (file
	// transfer with every wormhole client) sits beside them, on Transit.
	{"subprotocols", []string{"forwards", "files", "session/transfer", "terminal", "classic/..."}},
	{"dilation", []string{"dilation"}},
	{"transit", []string{"transit"}},
	{"wormhole", []string{"wormhole", "wormhole/..."}},
}

// leaves may be imported from any layer; they import no other package
// of the module but leaves.
var leaves = []string{"internal/...", "assets", "wormhole/codes"}

// sameLayerGroups may import each other's packages within one layer
// (a package and its own sub-packages).
var sameLayerGroups = []string{"wormhole"}

func matches(pattern, rel string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == prefix || strings.HasPrefix(rel, prefix+"/")
	}
	return rel == pattern
}

func layerOf(rel string) (int, bool) {
	for i, l := range layers {
		for _, p := range l.packages {
			if matches(p, rel) {
				return i, true
			}
		}
	}
	return 0, false
}

func isLeaf(rel string) bool {
	return slices.ContainsFunc(leaves, func(p string) bool { return matches(p, rel) })
}

func sameGroup(a, b string) bool {
	return slices.ContainsFunc(sameLayerGroups, func(g string) bool { return matches(g+"/...", a) && matches(g+"/...", b) })
}

// layeringViolations checks imports (package → its imports, as module-
// relative paths, "" for the module's root) against the layers.
func layeringViolations(imports map[string][]string) []string {
	var bad []string
	for pkg, deps := range imports {
		if pkg == "e2e" || strings.HasSuffix(pkg, "test") {
			continue // tests and test fakes may reach anywhere
		}
		from, known := layerOf(pkg)
		leaf := isLeaf(pkg)
		if !known && !leaf {
			bad = append(bad, fmt.Sprintf("%s: in no layer (add it to layering_test.go and ARCHITECTURE.md)", pkg))
			continue
		}
		for _, dep := range deps {
			switch to, ok := layerOf(dep); {
			case isLeaf(dep):
			case leaf:
				bad = append(bad, fmt.Sprintf("%s (a leaf helper) imports %s", pkg, dep))
			case !ok:
				bad = append(bad, fmt.Sprintf("%s imports %s, which is in no layer", pkg, dep))
			case layers[from].name == "frontends" && layers[to].name != "session":
				bad = append(bad, fmt.Sprintf("%s (a frontend) imports %s: frontends import only session and leaf helpers", pkg, dep))
			case to < from || (to == from && !sameGroup(pkg, dep)):
				bad = append(bad, fmt.Sprintf("%s (%s) imports %s (%s): imports go down the layers only",
					pkg, layers[from].name, dep, layers[to].name))
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// moduleImports lists the module's packages with their imports of the
// module's packages, relative to the module ("" for the root).
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rel := func(path string) (string, bool) {
		if path == module {
			return "", true
		}
		r, ok := strings.CutPrefix(path, module+"/")
		return r, ok
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkg, _ := rel(p.ImportPath)
		imports[pkg] = nil
		for _, dep := range p.Imports {
			if r, ok := rel(dep); ok {
				imports[pkg] = append(imports[pkg], r)
			}
		}
	}
	return imports
}

func TestLayering(t *testing.T) {
	for _, v := range layeringViolations(moduleImports(t)) {
		t.Error(v)
	}
}

// The check itself catches what it must.
func TestLayeringCatchesViolations(t *testing.T) {
	for _, tc := range []struct {
		imports map[string][]string
		want    string
	}{
		{map[string][]string{"dilation": {"session"}}, "dilation (dilation) imports session (session): imports go down the layers only"},
		{map[string][]string{"frontend/tui": {"dilation"}}, "frontend/tui (a frontend) imports dilation: frontends import only session and leaf helpers"},
		{map[string][]string{"forwards": {"session/transfer"}}, "forwards (subprotocols) imports session/transfer (subprotocols): imports go down the layers only"},
		{map[string][]string{"internal/logcap": {"wormhole"}}, "internal/logcap (a leaf helper) imports wormhole"},
		{map[string][]string{"newthing": nil}, "newthing: in no layer (add it to layering_test.go and ARCHITECTURE.md)"},
	} {
		got := layeringViolations(tc.imports)
		if !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%v: got %q, want %q", tc.imports, got, tc.want)
		}
	}
	ok := map[string][]string{
		"":               {"frontend/tui", "session", "dilation"},
		"frontend/tui":   {"session", "internal/logcap", "assets"},
		"session":        {"forwards", "dilation", "wormhole", "internal/logcap"},
		"forwards":       {"dilation"},
		"dilation":       {"transit", "wormhole"},
		"transit":        {"wormhole"},
		"wormhole":       {"wormhole/mailbox", "wormhole/codes"},
		"wormhole/codes": {"assets"},
	}
	if got := layeringViolations(ok); len(got) > 0 {
		t.Errorf("a sound house reported: %q", got)
	}
}
