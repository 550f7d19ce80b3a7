package dilation

import "time"

// Bounds on what the peer, or anyone reaching our listening port, can make
// a dilated connection hold. The peer knows the wormhole code but is
// trusted with nothing else: every table, queue and goroutine its records
// create is bounded here, and refusals are logged with their reason. What
// the connection race holds (inbound handshakes, the peer's hints) is
// bounded in transit's timing.go.
const (
	// maxPeerSubchannels bounds the subchannels the peer has open at once
	// (accepted, waiting in a listener's queue or unclaimed). An OPEN
	// beyond it is answered with CLOSE.
	maxPeerSubchannels = 4096

	// maxSubprotocolName bounds the length of a subprotocol name the peer
	// opens a subchannel for (the record allows up to MaxRecordSize);
	// a longer one is refused.
	maxSubprotocolName = 256

	// maxUnclaimedOpens bounds the subchannels the peer opened for a
	// subprotocol nobody listens for (yet): the reference holds them until
	// a listener appears, gander for unclaimedOpenTimeout, with data
	// holding up to maxUnclaimedBuffer of memory each (as counted for
	// subchannelBufferLimit: a full 64 KiB record fits), and then answers
	// CLOSE and drops their data.
	maxUnclaimedOpens    = 64
	unclaimedOpenTimeout = 5 * time.Second
	maxUnclaimedBuffer   = 128 << 10

	// maxUnansweredRefusals bounds the CLOSEs of refused subchannels that
	// wait for the peer's ACK. A peer that floods OPENs without reading
	// gets no more refusals: its further OPENs are dropped silently.
	maxUnansweredRefusals = 256

	// maxBufferedTotal bounds the memory held by data received for all
	// subchannels and not yet read (counted as for subchannelBufferLimit:
	// buffers and per-chunk overhead, not payload bytes); beyond it the connection stops reading from the peer
	// (as subchannelBufferLimit does for one subchannel) until the local
	// readers catch up.
	maxBufferedTotal = 32 << 20

	// maxUnackedBytes bounds the data sent and kept for resending until
	// the peer acknowledges it. Writers wait beyond it, except while our
	// own reader is paused (the peer's ACKs are then unread: waiting for
	// them would deadlock an echo), when maxUnackedWhilePaused applies.
	maxUnackedBytes = 64 << 20

	// maxUnackedWhilePaused bounds the data kept for resending even while
	// our reader is paused: writers wait beyond it. A paused link that
	// stays at this cap for pausedStallIntervals PingIntervals is dropped
	// (the peer pulls our data and never lets its ACKs reach us).
	maxUnackedWhilePaused = 128 << 20
	pausedStallIntervals  = 2

	// A Follower drops a connection on which nothing arrived for
	// followerSilence PingIntervals: the Leader pings every interval (the
	// reference at every PONG), so a silent connection is dead. The
	// Leader drops one on which it heard neither a PONG answering one of
	// its PINGs nor any other record but a PONG for two intervals: on a
	// busy link a PONG may wait behind a lot of data, whose arrival (or
	// acknowledgement) proves the peer alive as well.
	followerSilence = 3

	// maxOutstandingPings bounds the ids of our PINGs remembered until
	// answered: only a PONG with one of them counts as the peer alive
	// (the reference copies the PING's id into its PONG). The Leader
	// pings once an interval and gives up after two, so a few suffice.
	maxOutstandingPings = 4

	// Refusals are logged at Info level for the first refusalsLoggedInFull
	// of a connection and then every refusalLogEvery-th, with a count, so
	// that a flood cannot flood the log as well.
	refusalsLoggedInFull = 16
	refusalLogEvery      = 1024

	// minGenerationInterval is how often, at most, the peer's "reconnect"
	// makes a Follower start a new generation (see peerAsksReconnect): an
	// honest Leader asks once per generation, after seconds. Each
	// generation dials at most transit.MaxPeerHints of the peer's hints.
	minGenerationInterval = time.Second
)

// Per-subchannel flow control (gander-flow-v1, between gander peers only;
// see flow.go). Each subchannel's receive window starts at
// initialFlowWindow (both peers assume it, so it needs no record) and is
// tuned between minFlowWindow and maxFlowWindow toward the path's
// bandwidth-delay product; the windows of all subchannels together grow
// no further than maxFlowWindowsTotal, below maxBufferedTotal, so that
// honest peers never shut the connection-wide gate. A peer sending beyond
// the credit it was given is refused: the connection is dropped with a
// ProtocolError.
const (
	initialFlowWindow   = 256 << 10
	minFlowWindow       = initialFlowWindow
	maxFlowWindow       = 16 << 20
	maxFlowWindowsTotal = 24 << 20

	// rttProbeInterval is how often, at most, a gander side with
	// subchannels moving data PINGs to measure the round trip the
	// windows are tuned by.
	rttProbeInterval = 200 * time.Millisecond
)

// The send scheduler (sched.go) queues each subchannel's records,
// unnumbered, up to maxStreamQueue bytes before its writers wait, and all
// subchannels' together up to maxQueuedTotal.
const (
	maxStreamQueue = 2 << 20
	maxQueuedTotal = 32 << 20
)

// notSentLowat is the TCP_NOTSENT_LOWAT of the selected connection: how
// much written data may wait unsent in the kernel (see lowat_linux.go).
const notSentLowat = 128 << 10
