// Package transit finds a TCP connection to the peer, as magic-wormhole's
// docs/transit.md describes: hints (direct addresses and relays, carried
// by Dilation's "connection-hints" and classic Transit's "transit"
// messages), the relay handshake, and the race that listens, dials every
// hint again and again, and hands each connection to the caller's own
// handshake until one is selected.
//
// What runs over the connection (Dilation's Noise handshake and records,
// classic Transit's SecretBox records) and how the winner is confirmed
// (Dilation's KCM, classic Transit's "go") are the caller's: Race is
// generic over the result of its handshake.
//
//	hints.go   Hint, its JSON, relay locations
//	relay.go   the relay's "please relay ..." line and its "ok"
//	race.go    Race: listen, dial with retries, select the first
//	retry.go   backoff, AttemptError, the relay prober, the address watcher
//	timing.go  every timing constant and bound of the above
package transit

// DefaultRelay is the public relay the reference CLI uses.
const DefaultRelay = "tcp:transit.magic-wormhole.io:4001"
