package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// The order of fowld's events, as a controller written for fowld reads
// them: between two fowlds, each prints peer-connected before the
// listening or awaiting-connect of a service. gander, in fowld's place on
// either side, must not change what the fowld beside it prints (issue 14,
// item 18), and its own --json must come in the order fowld's does.

// orderedKinds are the events whose order a fowld controller relies on.
var orderedKinds = []string{"welcome", "code-allocated", "peer-connected", "listening", "awaiting-connect"}

// eventOrder is the kinds of p's events among orderedKinds, in the order
// p printed them.
func eventOrder(p *process) []string {
	events, _ := jsonLines(p)
	var kinds []string
	for _, e := range events {
		if k := e.str("kind"); slices.Contains(orderedKinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// orderPeer is one side of a pairing for the order test: fowld or gander
// --json, driven alike.
func orderPeer(t *testing.T, ganderSide bool, mailboxURL string) *process {
	if ganderSide {
		return startProcess(t, scratch, ganderBin(t), "--json", "--mailbox", mailboxURL, "--relay", "tcp:127.0.0.1:1")
	}
	return startProcess(t, scratch, venvBin(t, "fowld"), "--mailbox", mailboxURL)
}

// pairForOrder pairs roost (which accepts "web", fowld's local) and
// fledge (which offers it, fowld's remote). The roost's command goes at
// once, before the code; the fledge's at once too, or, offerOnConnect,
// once both print peer-connected. It returns once both have printed
// every event of the service.
func pairForOrder(t *testing.T, mailboxURL string, ganderRoost, ganderFledge, offerOnConnect bool) (roost, fledge *process) {
	t.Helper()
	roost, fledge = orderPeer(t, ganderRoost, mailboxURL), orderPeer(t, ganderFledge, mailboxURL)
	for _, p := range []*process{roost, fledge} {
		waitEvent(t, p, "welcome", nil, 30*time.Second)
	}
	daemon := testkit.UpperEchoServer(t)
	offer := fmt.Sprintf(`{"kind": "remote", "name": "web", "local_connect_port": %d}`, daemon)
	command(t, roost, `{"kind": "local", "name": "web"}`)
	if !offerOnConnect {
		command(t, fledge, offer)
	}
	command(t, roost, `{"kind": "allocate-code", "length": 2}`)
	code := waitEvent(t, roost, "code-allocated", nil, 30*time.Second).str("code")
	command(t, fledge, fmt.Sprintf(`{"kind": "set-code", "code": %q}`, code))
	if offerOnConnect {
		for _, p := range []*process{fledge, roost} {
			waitEvent(t, p, "peer-connected", nil, 60*time.Second)
		}
		command(t, fledge, offer)
	}
	waitEvent(t, roost, "listening", named("web"), 60*time.Second)
	waitEvent(t, fledge, "awaiting-connect", named("web"), 60*time.Second)
	for _, p := range []*process{roost, fledge} {
		waitEvent(t, p, "peer-connected", nil, 30*time.Second)
	}
	return roost, fledge
}

// closeOrderPair ends both sides politely.
func closeOrderPair(t *testing.T, a, b *process) {
	command(t, a, `{"kind": "session-close", "timeout": 5}`)
	for _, p := range []*process{a, b} {
		if err := p.wait(t, 30*time.Second); err != nil {
			t.Logf("%s exited with %v", p.name, err)
		}
	}
}

func TestFowldOrder(t *testing.T) {
	mailbox := startMailbox(t)
	const rounds = 3 // who leads Dilation is chosen at random: try both, likely

	// The reference: fowld with fowld, the controller offering once both
	// are connected. (Offering at once, before the code, two fowlds race
	// too: the roost printed listening first in one round of three, when
	// the fledge's request came with the link.)
	var wantRoost, wantFledge []string
	for i := range rounds {
		roost, fledge := pairForOrder(t, mailbox.URL, false, false, true)
		r, f := eventOrder(roost), eventOrder(fledge)
		t.Logf("fowld↔fowld, round %d: roost %v, fledge %v", i, r, f)
		if i == 0 {
			wantRoost, wantFledge = r, f
		} else if !slices.Equal(r, wantRoost) || !slices.Equal(f, wantFledge) {
			t.Fatalf("fowld↔fowld is not steady: roost %v then %v, fledge %v then %v", wantRoost, r, wantFledge, f)
		}
		closeOrderPair(t, roost, fledge)
	}

	for _, tc := range []struct {
		name                      string
		ganderRoost, ganderFledge bool
	}{
		{"gander offers to fowld", false, true},
		{"fowld offers to gander", true, false},
	} {
		// gander keeps that order even with the harder timing: both
		// commands before the code, so that its first request or
		// answer is ready as soon as its link is up.
		t.Run(tc.name, func(t *testing.T) {
			for i := range rounds {
				roost, fledge := pairForOrder(t, mailbox.URL, tc.ganderRoost, tc.ganderFledge, false)
				r, f := eventOrder(roost), eventOrder(fledge)
				t.Logf("round %d: roost %v, fledge %v", i, r, f)
				if !slices.Equal(r, wantRoost) {
					t.Errorf("round %d: the roost (%s) printed %s; between fowlds: %s", i, roost.name, strings.Join(r, ", "), strings.Join(wantRoost, ", "))
				}
				if !slices.Equal(f, wantFledge) {
					t.Errorf("round %d: the fledge (%s) printed %s; between fowlds: %s", i, fledge.name, strings.Join(f, ", "), strings.Join(wantFledge, ", "))
				}
				closeOrderPair(t, roost, fledge)
			}
		})
	}
}
