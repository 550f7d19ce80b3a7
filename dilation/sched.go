package dilation

// The send scheduler: each subchannel's OPEN, DATA and CLOSE wait in its
// own stream, unnumbered, and the link's flush takes them by deficit
// round-robin by bytes (as FQ-CoDel does: a stream that was idle starts
// ahead of the busy ones), numbering each as it takes it.
//
// Why numbering waits until then: L4 numbers every sequenced record in one
// sequence, and the peer (the reference too) delivers only a record whose
// number is above every one it has seen, so numbered records must go out
// in order. Records are therefore numbered only when the scheduler
// chooses them for the link, and from then on keep their order (the
// outbox, and resending after a reconnection); what can still be
// reordered is only what nobody has numbered yet. Nothing changes on the
// wire but the interleaving, which the protocol leaves to the sender, so
// the scheduler serves reference peers as well.
//
// All of it is guarded by manager.mu.

// schedQuantum is what a stream may send per round: one full DATA record,
// so that bulk streams alternate record by record.
const schedQuantum = maxDataPayload + 9

// stream is one subchannel's queue of unnumbered records and its sending
// credit (gander-flow-v1; unlimited otherwise).
type stream struct {
	scid    uint32
	queue   []record
	bytes   int
	deficit int
	active  bool // in the scheduler's new or old list
	// sent is the DATA payload numbered so far, credit the peer's limit
	// for it; DATA beyond credit waits (blocked) until a WINDOW raises it.
	sent, credit int64
	limited      bool
	blocked      bool
}

type scheduler struct {
	newFlows, oldFlows []*stream
	bytes              int // queued in all streams
}

// enqueue adds rec at the tail of st and makes st eligible.
func (s *scheduler) enqueue(st *stream, rec record) {
	st.queue = append(st.queue, rec)
	n := recordSize(rec)
	st.bytes += n
	s.bytes += n
	if !st.active && !st.blocked {
		st.active = true
		st.deficit = schedQuantum
		s.newFlows = append(s.newFlows, st)
	}
}

// unblock makes st eligible again after its credit grew.
func (s *scheduler) unblock(st *stream) {
	if !st.blocked {
		return
	}
	st.blocked = false
	if len(st.queue) > 0 && !st.active {
		st.active = true
		st.deficit = schedQuantum
		s.oldFlows = append(s.oldFlows, st)
	}
}

// sendable says whether rec, the head of st, may be numbered now.
func (st *stream) sendable(rec record) bool {
	d, ok := rec.(dataRecord)
	return !ok || !st.limited || st.sent+int64(len(d.payload)) <= st.credit
}

// take removes records worth up to budget bytes (at least one if any is
// eligible) in scheduling order and hands each to emit; a stream found
// short of credit is handed to blocked.
func (s *scheduler) take(budget int, emit func(record), blocked func(*stream)) {
	emitted := false
	for budget > 0 {
		list := &s.newFlows
		if len(*list) == 0 {
			list = &s.oldFlows
		}
		if len(*list) == 0 {
			return
		}
		st := (*list)[0]
		if st.deficit <= 0 {
			// Its turn is over: to the back of the busy ones.
			*list = (*list)[1:]
			st.deficit += schedQuantum
			s.oldFlows = append(s.oldFlows, st)
			continue
		}
		rec := st.queue[0]
		if !st.sendable(rec) {
			*list = (*list)[1:]
			st.active, st.blocked = false, true
			if blocked != nil {
				blocked(st)
			}
			continue
		}
		n := recordSize(rec)
		if emitted && n > budget {
			return
		}
		emitted = true
		st.queue[0] = nil
		st.queue = st.queue[1:]
		st.bytes -= n
		s.bytes -= n
		st.deficit -= n
		budget -= n
		if d, ok := rec.(dataRecord); ok {
			st.sent += int64(len(d.payload))
		}
		if len(st.queue) == 0 {
			*list = (*list)[1:]
			st.active = false
			st.queue = nil
		}
		emit(rec)
	}
}

// drain removes everything queued in st (its subchannel is gone) and
// hands each record to drop.
func (s *scheduler) drain(st *stream, drop func(record)) {
	for _, rec := range st.queue {
		drop(rec)
	}
	s.bytes -= st.bytes
	st.queue, st.bytes = nil, 0
	if st.active {
		st.active = false
		for _, list := range []*[]*stream{&s.newFlows, &s.oldFlows} {
			for i, o := range *list {
				if o == st {
					*list = append((*list)[:i], (*list)[i+1:]...)
					break
				}
			}
		}
	}
}
