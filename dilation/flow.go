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
// reader has consumed more than half of the window (as in quic-go). If,
// during the epoch, the sender ran out of credit (said BLOCKED) while our
// reader kept up (little buffered), the window is what limits the rate:
// it doubles, up to maxFlowWindow and within maxFlowWindowsTotal. If the
// epoch took more than 16 round trips per window, the window is far
// larger than what the reader and the path use: it halves, down to
// minFlowWindow. A window that limits the rate over a path of a given
// bandwidth-delay product keeps the sender short of credit until it
// exceeds that product, so it settles a little above it (see
// TestFlowWindowTunesToTheBDP). The round trip is the smallest one seen
// (rttEstimator), not one inflated by the data queued ahead of a PONG.

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
}

// blocked is the peer's BLOCKED at limit. One at a limit announced before
// the window took its current size is stale: it says the smaller window
// was too small, and counting it would make the window overshoot.
func (w *recvWindow) blocked(limit uint64) {
	if int64(min(limit, 1<<62)) >= w.sizeLimit {
		w.exhausted = true
	}
}

func newRecvWindow(now time.Time) recvWindow {
	return recvWindow{size: initialFlowWindow, limit: initialFlowWindow, epochStart: now}
}

// receive accounts for n bytes arriving and reports false if they exceed
// the credit granted.
func (w *recvWindow) receive(n int) bool {
	w.received += int64(n)
	return w.received <= w.limit
}

// consume accounts for n bytes read at now, with rtt the round trip (0 if
// unknown), and returns the new limit to announce, if one is due: once a
// quarter of the window was consumed since the last announcement.
// grow is asked before the window grows by delta (and told of a shrink,
// a negative delta); it may refuse.
func (w *recvWindow) consume(n int, now time.Time, rtt time.Duration, grow func(delta int64) bool) (limit int64, announce bool) {
	w.read += int64(n)
	if w.limit-w.read > w.size*3/4 {
		return 0, false
	}
	w.tune(now, rtt, grow)
	// Credit once given stays given: a shrunk window takes effect as
	// the reader catches up.
	if next := w.read + w.size; next > w.limit {
		w.limit = next
		return w.limit, true
	}
	return 0, false
}

// tune ends an epoch once more than half the window was consumed in it.
func (w *recvWindow) tune(now time.Time, rtt time.Duration, grow func(delta int64) bool) {
	inEpoch := w.read - w.epochRead
	if inEpoch <= w.size/2 {
		return
	}
	elapsed := now.Sub(w.epochStart)
	exhausted := w.exhausted
	w.epochStart, w.epochRead, w.exhausted = now, w.read, false
	size := w.size
	defer func() {
		if w.size != size {
			w.sizeLimit = max(w.limit, w.read+w.size)
		}
	}()
	keptUp := w.received-w.read <= w.size/4
	switch {
	case exhausted && keptUp && w.size < maxFlowWindow:
		next := min(2*w.size, maxFlowWindow)
		if grow(next - w.size) {
			w.size = next
		}
	case rtt > 0 && w.size > minFlowWindow:
		// The time one window took to read, in round trips.
		perWindow := float64(elapsed) * float64(w.size) / float64(inEpoch) / float64(rtt)
		if perWindow > 16 {
			next := max(w.size/2, minFlowWindow)
			grow(next - w.size)
			w.size = next
		}
	}
}

// rttEstimator keeps the smallest round trip seen within rttMinWindow,
// from PING/PONG pairs. Not the smoothed one: our PONGs and the peer's
// PINGs queue behind the very data the window lets through, so a
// smoothed RTT grows with the window and would have it grow without end
// (bufferbloat); the minimum is the path's own delay.
type rttEstimator struct {
	min   time.Duration
	since time.Time // when min was sampled
}

// rttMinWindow is how long a minimum round trip stands before a larger
// sample replaces it (the path may have changed: a reconnection).
const rttMinWindow = 10 * time.Second

func (r *rttEstimator) sample(d time.Duration, now time.Time) {
	d = max(d, time.Microsecond)
	if r.min == 0 || d <= r.min || now.Sub(r.since) > rttMinWindow {
		r.min, r.since = d, now
	}
}
