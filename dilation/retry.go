package dilation

import (
	"time"

	"github.com/gander-pair/gander/transit"
)

// Reconnection never gives up: an outage may last a train ride. Each
// generation's race retries every hint (transit's timing.go bounds the
// gaps); what Dilation adds is when to start a new generation.
const (
	// The Leader starts a new generation (sends "reconnect", as the
	// reference does when a connection is lost) when its connection has
	// waited at the relay nudgeAfterRelayWait without the peer arriving:
	// the path is back but the peer is not trying (the reference makes one
	// attempt per generation). It also does so after generationPatience
	// with no connection at all (the peer's hints may be stale). Both
	// double after each new generation up to maxNudgeDelay, and reset
	// once connected.
	nudgeAfterRelayWait = 2 * time.Second
	generationPatience  = 15 * time.Second
	maxNudgeDelay       = 60 * time.Second

	// Before asking for a new generation after a loss (the Leader's
	// "reconnect", the Follower's "reconnecting"), a side probes the
	// relay with a TCP connect (transit.Prober), so that a reference
	// peer's single attempt of the new generation is made once the path
	// is back. A side that may also connect directly waits for the probe
	// at most directProbePatience: the relay alone may be what is down.
	directProbePatience = 3 * time.Second
)

// AttemptError is one failed connection attempt (Status.LastFailure): to
// where, and why.
type AttemptError = transit.AttemptError

// ErrNoPartnerAtRelay is a connection that waited transit.RelayPartnerTimeout
// at the transit relay without the peer's connection arriving.
var ErrNoPartnerAtRelay = transit.ErrNoPartnerAtRelay
