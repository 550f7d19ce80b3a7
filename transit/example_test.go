package transit_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gander-pair/gander/transit"
)

// Both sides send the relay the same token, derived from the key they
// share, each with its own side.
func ExampleRelayHandshake() {
	key := bytes.Repeat([]byte("k"), 32)
	fmt.Print(transit.RelayHandshake(key, "12345678abcdabcd"))
	// Output: please relay 3f4147851dbd2589d25b654ee9fb35ed0d3e5f19c5c5403e8e6a195c70f0577a for side 12345678abcdabcd
}

// Hints travel as Dilation's "connection-hints" and classic Transit's
// "transit" messages carry them.
func ExampleEncodeHints() {
	relay, err := transit.ParseRelayLocation(transit.DefaultRelay)
	if err != nil {
		panic(err)
	}
	hints := []transit.Hint{{Host: "192.168.1.5", Port: 40123}, relay}
	raw := transit.EncodeHints(hints)
	for _, r := range raw {
		fmt.Println(string(r))
	}
	for _, h := range transit.ParseHints(raw) {
		fmt.Println(h)
	}
	// Output:
	// {"type":"direct-tcp-v1","priority":0,"hostname":"192.168.1.5","port":40123}
	// {"type":"relay-v1","hints":[{"type":"direct-tcp-v1","priority":0,"hostname":"transit.magic-wormhole.io","port":4001}]}
	// direct 192.168.1.5:40123
	// relay transit.magic-wormhole.io:4001
}

// Two races, one per side, with a toy handshake: each side says who it
// is, and the leader confirms the connection it picks with "go", as
// classic Transit's sender does.
func ExampleStartRace() {
	handshake := func(me, peer string, waitForGo bool) func(net.Conn, transit.Attempt) (net.Conn, error) {
		return func(conn net.Conn, a transit.Attempt) (net.Conn, error) {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			defer conn.SetDeadline(time.Time{})
			if _, err := io.WriteString(conn, me); err != nil {
				return nil, err
			}
			if err := expect(conn, peer); err != nil {
				return nil, err
			}
			if waitForGo {
				return conn, expect(conn, "go\n")
			}
			return conn, nil
		}
	}
	closeConn := func(c net.Conn) { c.Close() }

	leaderEvents := make(chan transit.Event)
	leader, hints := transit.StartRace(transit.RaceConfig[net.Conn]{
		ID: 1, Side: "aaaaaaaaaaaaaaaa", Events: leaderEvents,
		Handshake: handshake("leader\n", "follower\n", false),
		Select:    func(c net.Conn) error { _, err := io.WriteString(c, "go\n"); return err },
		Discard:   closeConn,
	})
	defer func() { leader.Stop(); leader.Wait() }()

	followerEvents := make(chan transit.Event)
	follower, _ := transit.StartRace(transit.RaceConfig[net.Conn]{
		ID: 1, Side: "bbbbbbbbbbbbbbbb", NoListen: true, Events: followerEvents,
		Handshake: handshake("follower\n", "leader\n", true),
		Discard:   closeConn,
	})
	defer func() { follower.Stop(); follower.Wait() }()
	follower.AddHints(hints) // as if the leader's hints came through the mailbox

	// Each side's events come on its own channel, failed attempts
	// included, until its race has selected a connection.
	var leaderConn, followerConn *transit.Selected[net.Conn]
	for leaderConn == nil || followerConn == nil {
		select {
		case ev := <-leaderEvents:
			if sel, ok := ev.(transit.Selected[net.Conn]); ok {
				leaderConn = &sel
			}
		case ev := <-followerEvents:
			if sel, ok := ev.(transit.Selected[net.Conn]); ok {
				followerConn = &sel
			}
		}
	}
	fmt.Println("leader selected; inbound:", leaderConn.Attempt.Inbound)
	fmt.Println("follower selected; inbound:", followerConn.Attempt.Inbound)
	leaderConn.Result.Close()
	followerConn.Result.Close()
	// Output:
	// leader selected; inbound: true
	// follower selected; inbound: false
}

// expect reads exactly want from conn, byte by byte.
func expect(conn net.Conn, want string) error {
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if string(got) != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}
