package dilation

import (
	"encoding/json"
	"slices"
	"time"
)

// Per-subchannel flow control, gander-flow-v1. Dilation itself has none:
// the reference pauses the whole connection when one consumer is slow, so
// one stopped reader stalls every subchannel. Between two gander peers
// that both announce flowAbility, each subchannel has a receive window as
// in QUIC (modelled on quic-go's flowcontrol package): the receiver grants
// credit as an absolute offset in WINDOW records, the sender numbers no
// DATA beyond it (sched.go), and the receiver refuses a peer that sends
// beyond it. Toward any other peer nothing of this is sent.
//
// The window is auto-tuned per epoch, an epoch ending each time the
// reader has consumed more than half of the window (as in quic-go).
// All along the receiver times its credit: from announcing a limit
// to the first data beyond the previous one, when the sender had said
// BLOCKED at that previous limit (so sent as soon as the WINDOW reached
// it). That is the round trip plus the time the data waited in queues
// along the path (the relay's and the kernels' socket buffers), where it
// delays every other subchannel's records as well; the smaller of the
// latest two such samples since the window took its size, less the
// smallest round trip seen (rttEstimator, which these samples feed as
// well as PINGs do), is the standing queue. If the sender ran out of
// credit while our reader kept up, the window is what limits the rate,
// and:
//
//   - while the queue is within queueSlack, the path may carry more: the
//     window doubles (as TCP's slow start, until the first queue is seen;
//     then by an eighth), up to maxFlowWindow and within
//     maxFlowWindowsTotal;
//   - once it exceeds two slacks in two samples in a row, the path
//     carries no more than it does and the excess only queues (quic-go
//     grows here, trusting a congestion controller to keep queues short;
//     nothing does that for us): the window shrinks to what the path
//     holds in a round trip and a slack, its bandwidth-delay product with
//     a margin, by half at most.
//
// If the epoch took more than 16 round trips per window (and more than
// slowReaderWindowTime: on loopback 16 round trips are a pause of a busy
// machine's scheduler, not a slow reader), the window is
// far larger than what the reader and the path use: it halves, down to
// minFlowWindow. See TestFlowWindowTunesToTheBDP and
// TestFlowWindowKeepsTheQueueShort.
//
// The size a path-limited epoch settled on is the connection's: a new
// subchannel starts with it (pathWindow), so that a second transfer does
// not ramp up from minFlowWindow again.

// flowAbility is gander-flow-v1's name in the version message (see
// GanderVersionFields).
const flowAbility = "gander-flow-v1"

// peerHasFlow reports whether the peer's version message announces
// flowAbility.
func peerHasFlow(version map[string]json.RawMessage) bool {
	var abilities []string
	if raw, ok := version[flowAbilitiesKey]; !ok || json.Unmarshal(raw, &abilities) != nil {
		return false
	}
	return slices.Contains(abilities, flowAbility)
}

// recvWindow is one subchannel's receive side: how much the peer may send
// (limit, an absolute payload offset), how much arrived, how much the
// local reader consumed, and the auto-tuning epoch. Its user locks it.
type recvWindow struct {
	size     int64
	limit    int64
	received int64
	read     int64

	epochStart time.Time
	epochRead  int64 // read at epochStart
	exhausted  bool  // the sender said BLOCKED this epoch
	// sizeLimit is the first limit announced with the current size.
	sizeLimit int64
	// pathSized: the last epoch sized the window by the path.
	pathSized bool

	// The credit being timed: announced at probeAt, when the limit was
	// probeFrom; blockedAt is the highest limit the sender said BLOCKED
	// at. samples are the latest two since the window took its size, at
	// sizedAt (0: none), the latest first.
	probing   bool
	probeFrom int64
	probeAt   time.Time
	blockedAt int64
	samples   [2]time.Duration
	sizedAt   time.Time
	fresh     time.Duration // the latest sample, until taken for the RTT estimate
	// ramped: a queue was seen (or the size was learned from the path):
	// the window grows gently from now on.
	ramped bool
}

// blocked is the peer's BLOCKED at limit. One at a limit announced before
// the window took its current size is stale: it says the smaller window
// was too small, and counting it would make the window overshoot.
func (w *recvWindow) blocked(limit uint64) {
	l := int64(min(limit, 1<<62))
	w.blockedAt = max(w.blockedAt, l)
	if l >= w.sizeLimit {
		w.exhausted = true
	}
}

func newRecvWindow(now time.Time) recvWindow {
	return recvWindow{size: initialFlowWindow, limit: initialFlowWindow, epochStart: now}
}

// startAt gives a new window size instead of initialFlowWindow (the
// path's, learned by an earlier subchannel); the peer learns of it with
// the first WINDOW.
func (w *recvWindow) startAt(size int64) {
	w.size = size
	w.sizeLimit = size
	w.ramped = true
}

// receive accounts for n bytes arriving at now and reports false if they
// exceed the credit granted.
func (w *recvWindow) receive(n int, now time.Time) bool {
	w.received += int64(n)
	if w.probing && w.received > w.probeFrom {
		w.probing = false
		if w.blockedAt >= w.probeFrom && !w.probeAt.Before(w.sizedAt) {
			// The sender waited for this credit, announced with the
			// window's current size: it sent at once.
			d := max(now.Sub(w.probeAt), time.Nanosecond)
			w.samples = [2]time.Duration{d, w.samples[0]}
			w.fresh = d
		}
	}
	return w.received <= w.limit
}

// consume accounts for n bytes read at now, with rtt the round trip (0 if
// unknown), and returns the new limit to announce, if one is due: once a
// eighth of the window was consumed since the last announcement. (Each
// announcement lets the sender send that much at once, which queues
// ahead of other subchannels' records where the path is slower than the
// sender: an eighth keeps that burst short.)
// grow is asked before the window grows by delta (and told of a shrink,
// a negative delta); it may refuse.
func (w *recvWindow) consume(n int, now time.Time, rtt time.Duration, grow func(delta int64) bool) (limit int64, announce bool) {
	if w.read == 0 {
		// The first epoch starts with the first data, not when the
		// subchannel was opened.
		w.epochStart = now
	}
	w.read += int64(n)
	if w.limit-w.read > w.size*7/8 {
		return 0, false
	}
	w.pathSized = w.tune(now, rtt, grow)
	// Credit once given stays given: a shrunk window takes effect as
	// the reader catches up.
	if next := w.read + w.size; next > w.limit {
		if !w.probing {
			w.probing, w.probeFrom, w.probeAt = true, w.limit, now
		}
		w.limit = next
		return w.limit, true
	}
	return 0, false
}

// queueSlack is how long data may wait in the path's queues before the
// window counts as too large: an eighth of the round trip rtt, plus 2 ms
// for the scheduling of the processes along the path (on loopback the
// round trip is a fraction of a millisecond, and a window of a few MiB
// comes through in a millisecond or two).
func queueSlack(rtt time.Duration) time.Duration { return rtt/8 + 2*time.Millisecond }

// slowReaderWindowTime is the least time a window must take to be read
// before a reader counts as slow (see tune).
const slowReaderWindowTime = 250 * time.Millisecond

// tune ends an epoch once more than half the window was consumed in it,
// and reports whether the window's size was set by the path (not by the
// reader): that size is worth starting the next subchannel with.
func (w *recvWindow) tune(now time.Time, rtt time.Duration, grow func(delta int64) bool) (pathSized bool) {
	inEpoch := w.read - w.epochRead
	if inEpoch <= w.size/2 {
		return false
	}
	elapsed := now.Sub(w.epochStart)
	exhausted := w.exhausted
	// One sample may have met a pause of a process on the way (a busy
	// machine); a standing queue shows in both.
	creditRTT, confirmed := w.samples[0], w.samples[1] != 0
	if confirmed {
		creditRTT = min(creditRTT, w.samples[1])
	}
	w.epochStart, w.epochRead, w.exhausted = now, w.read, false
	size := w.size
	defer func() {
		if w.size != size {
			w.sizeLimit = max(w.limit, w.read+w.size)
			// Samples of the old size say nothing of the new one.
			w.sizedAt, w.samples = now, [2]time.Duration{}
		}
	}()
	double := func() {
		next := 2 * w.size
		if w.ramped {
			next = w.size + w.size/8
		}
		if next = min(next, maxFlowWindow); next > w.size && grow(next-w.size) {
			w.size = next
		}
	}
	keptUp := w.received-w.read <= w.size/4
	limited := exhausted && keptUp
	slack := queueSlack(rtt)
	switch {
	case limited && rtt <= 0:
		// No round trip measured yet: grow as quic-go does; the PING
		// measuring it is on its way.
		double()
		return false
	case limited && creditRTT == 0:
		// Not timed yet with this size: the next epoch may tell.
		return true
	case limited && creditRTT <= rtt+slack:
		double()
		return true
	case limited && creditRTT > rtt+2*slack && confirmed:
		w.ramped = true
		target := float64(w.size) * float64(rtt+slack) / float64(creditRTT)
		next := max(int64(target), w.size/2, minFlowWindow)
		grow(next - w.size)
		w.size = next
		return true
	case limited:
		return true // about the bandwidth-delay product
	case rtt > 0 && w.size > minFlowWindow && time.Duration(float64(elapsed)*float64(w.size)/float64(inEpoch)) > max(16*rtt, slowReaderWindowTime):
		next := max(w.size/2, minFlowWindow)
		grow(next - w.size)
		w.size = next
	}
	return false
}

// rttEstimator keeps the smallest round trip seen over the last
// rttMinWindow or two, from PING/PONG pairs and from the credit's round
// trips (see recvWindow). Not the smoothed one: our PONGs and the peer's
// PINGs queue behind the very data the window lets through, so a
// smoothed RTT grows with the window and would have it grow without end
// (bufferbloat); the minimum is the path's own delay. PINGs alone are a
// poor sample through a relay without TCP_NODELAY, which may hold a PING
// back up to a delayed ACK (40 ms); the credit, timed all along a
// transfer, catches the moments the queues are empty.
type rttEstimator struct {
	min       time.Duration // the smaller of cur and prev
	cur, prev time.Duration // the minimum of this period and the last
	since     time.Time     // when this period started
}

// rttMinWindow is how long a period of the minimum filter lasts: a
// minimum stands that long at least, twice that at most, so that a path
// that became slower (a reconnection) is followed.
const rttMinWindow = 10 * time.Second

func (r *rttEstimator) sample(d time.Duration, now time.Time) {
	d = max(d, time.Microsecond)
	if r.since.IsZero() {
		r.since = now
	}
	if now.Sub(r.since) > rttMinWindow {
		r.prev, r.cur, r.since = r.cur, 0, now
	}
	if r.cur == 0 || d < r.cur {
		r.cur = d
	}
	r.min = r.cur
	if r.prev != 0 && r.prev < r.min {
		r.min = r.prev
	}
}
