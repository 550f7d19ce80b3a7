package transit

import "time"

// Reconnection never gives up: an outage may last a train ride. What is
// bounded is the gap between attempts, so that a path that returns is used
// within about RetryCap, and the work each attempt (or a stranger reaching
// our listening port) costs.
const (
	// Each hint (a relay, each of the peer's direct addresses) is retried
	// with a backoff that starts at RetryInitial and doubles up to
	// RetryCap, each delay jittered by ±RetryJitter, one attempt in
	// flight per hint.
	RetryInitial = 100 * time.Millisecond
	RetryCap     = 500 * time.Millisecond
	RetryJitter  = 0.25

	// DialTimeout bounds one TCP connect: a path that drops packets
	// instead of refusing must not hold a hint's retries for long.
	DialTimeout = 3 * time.Second

	// RelayDelay holds the peer's relay hints back while its direct ones
	// have a chance, as the reference's Connector.RELAY_DELAY does.
	RelayDelay = 2 * time.Second

	// RelayPartnerTimeout bounds how long a connection waits at the
	// transit relay for the peer's: one whose partner never comes (the
	// peer gave up, or the connection died silently) is abandoned with
	// ErrNoPartnerAtRelay and retried.
	RelayPartnerTimeout = 10 * time.Second

	// MaxInboundHandshakes bounds the connections accepted on our
	// listening port that have not finished their handshake; more are
	// closed at once. Each has InboundHandshakeTimeout to complete the
	// caller's handshake (the caller applies it: see Attempt.Inbound).
	MaxInboundHandshakes    = 8
	InboundHandshakeTimeout = 10 * time.Second

	// MaxPeerHints bounds the peer's hints dialled per race; the rest are
	// ignored.
	MaxPeerHints = 32

	// AddressPollInterval is how often WatchAddresses compares the
	// machine's addresses with the last ones.
	AddressPollInterval = time.Second
	// AddressPollWithNotifications is the poll's interval where the
	// kernel reports address changes (rtnetlink on Linux).
	AddressPollWithNotifications = 30 * time.Second
)
