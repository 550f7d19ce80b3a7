package session

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gander-pair/gander/forwards"
)

// Bounds on the questions the peer can put to the local user. Each listen
// request the configuration does not allow holds a forwarder goroutine
// (and the peer's command subchannel) until it is answered, so the number
// waiting and the wait itself are both bounded.
const (
	// MaxPendingAsks is how many distinct requests may wait for the user
	// at once; repeats of a waiting request share its question and do
	// not count. Beyond it a request is refused at once (ErrTooManyAsks).
	MaxPendingAsks = 16
	// MaxWaitersPerAsk is how many repeats of one request may wait for
	// its question (each holds a forwarder goroutine); the next repeat is
	// refused at once (ErrTooManyAsks).
	MaxWaitersPerAsk = 64
	// DefaultAskTimeout is how long a request waits for an answer before
	// it is denied (ErrNoAnswer) and its question withdrawn.
	DefaultAskTimeout = 5 * time.Minute
	// DeniedMemory is how long a denied request is remembered: the same
	// request (service and port) again within it is denied without asking
	// (ErrDeniedRecently).
	DeniedMemory = time.Minute
)

// Reasons a request is denied without the user's word; the peer reads
// their text (the user's own Deny keeps fowl's "No service permitted").
var (
	ErrTooManyAsks      = errors.New("too many requests waiting for an answer")
	ErrNoAnswer         = errors.New("no answer from the user")
	ErrDeniedRecently   = errors.New("the user denied this request a moment ago")
	ErrDeniedForSession = errors.New("the user denies every request in this session")
)

// askQueue holds the peer's listen requests that wait for the user. It
// is the controller's Asker: one question (a PermissionRequest) per
// distinct request, however many times the peer makes it.
type askQueue struct {
	emit    func(Event)
	timeout time.Duration
	now     func() time.Time

	mu   sync.Mutex
	last int64
	byID map[int64]*pendingAsk
	// Requests are keyed by what they ask: a forwards.ListenRequest, or
	// another comparable value (keyboardAsk, the shared terminal's).
	byRequest map[any]*pendingAsk
	// denied is when each request was last denied, for DeniedMemory.
	denied  map[any]time.Time
	denyAll bool // DenyAll{ForSession: true}
	closed  bool // the session ended: everything is denied
}

// pendingAsk is one question and every request waiting for its answer.
type pendingAsk struct {
	id       int64
	req      any
	waiters  int
	timer    *time.Timer   // the ask timeout; nil until the question is out
	decided  chan struct{} // closed once decision and reason are set
	decision forwards.Decision
	reason   error
}

func newAskQueue(emit func(Event), timeout time.Duration) *askQueue {
	if timeout <= 0 {
		timeout = DefaultAskTimeout
	}
	return &askQueue{
		emit: emit, timeout: timeout, now: time.Now,
		byID:      map[int64]*pendingAsk{},
		byRequest: map[any]*pendingAsk{},
		denied:    map[any]time.Time{},
	}
}

// ask is a forwards.Asker: it waits for the user's answer to req, the
// timeout, or the end of ctx (the peer gave up).
func (q *askQueue) ask(ctx context.Context, req forwards.ListenRequest) (forwards.Decision, error) {
	return q.askAbout(ctx, req, func(id int64) Event { return PermissionRequest{ID: id, Request: req} })
}

// askAbout is ask for any request (a comparable key): question makes
// the event that puts it to the user, with the question's ID.
func (q *askQueue) askAbout(ctx context.Context, req any, question func(id int64) Event) (forwards.Decision, error) {
	p, fresh, err := q.join(req)
	if p == nil {
		return forwards.Deny, err
	}
	if fresh {
		q.emit(question(p.id))
		q.mu.Lock()
		if q.byID[p.id] == p { // not answered in the meantime
			p.timer = time.AfterFunc(q.timeout, func() { q.decide(p.id, forwards.Deny, ErrNoAnswer, true) })
		}
		q.mu.Unlock()
	}
	select {
	case <-p.decided:
		return p.decision, p.reason
	case <-ctx.Done():
	}
	q.mu.Lock()
	p.waiters--
	abandoned := p.waiters == 0 && q.byID[p.id] == p
	q.mu.Unlock()
	if abandoned {
		q.decide(p.id, forwards.Deny, nil, true)
	}
	return forwards.Deny, nil
}

// join adds a waiter to req's question, or makes a new question, or (nil)
// says why req is denied at once.
func (q *askQueue) join(req any) (p *pendingAsk, fresh bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return nil, false, nil
	case q.denyAll:
		return nil, false, ErrDeniedForSession
	case q.now().Sub(q.denied[req]) < DeniedMemory:
		return nil, false, ErrDeniedRecently
	}
	if p = q.byRequest[req]; p != nil {
		if p.waiters >= MaxWaitersPerAsk {
			return nil, false, ErrTooManyAsks
		}
		p.waiters++
		return p, false, nil
	}
	if len(q.byRequest) >= MaxPendingAsks {
		return nil, false, ErrTooManyAsks
	}
	q.last++
	p = &pendingAsk{id: q.last, req: req, waiters: 1, decided: make(chan struct{})}
	q.byID[p.id], q.byRequest[req] = p, p
	return p, true, nil
}

// decide answers question id for all its waiters; withdraw tells the
// user the question is gone (they did not answer it themselves). It says
// whether id was waiting.
func (q *askQueue) decide(id int64, d forwards.Decision, reason error, withdraw bool) bool {
	q.mu.Lock()
	p := q.byID[id]
	if p == nil {
		q.mu.Unlock()
		return false
	}
	delete(q.byID, id)
	delete(q.byRequest, p.req)
	if p.timer != nil {
		p.timer.Stop()
	}
	if d == forwards.Deny && p.waiters > 0 {
		q.rememberDenied(p.req)
	}
	p.decision, p.reason = d, reason
	close(p.decided)
	q.mu.Unlock()
	if withdraw {
		q.emit(PermissionWithdrawn{ID: id})
	}
	return true
}

// rememberDenied notes a denial and forgets the expired ones, so the map
// holds no more than the denials of the last DeniedMemory.
func (q *askQueue) rememberDenied(req any) {
	now := q.now()
	for r, at := range q.denied {
		if now.Sub(at) >= DeniedMemory {
			delete(q.denied, r)
		}
	}
	q.denied[req] = now
}

// answer is the user's Answer; false if nothing waits for it.
func (q *askQueue) answer(a Answer) bool { return q.decide(a.ID, a.Decision, nil, false) }

// denyAllPending denies every waiting request; forSession denies all later ones
// too, without asking.
func (q *askQueue) denyAllPending(forSession bool) {
	q.mu.Lock()
	if forSession {
		q.denyAll = true
	}
	ids := q.pendingIDs()
	q.mu.Unlock()
	for _, id := range ids {
		q.decide(id, forwards.Deny, nil, true)
	}
}

// close denies everything, waiting or to come: the session is ending.
func (q *askQueue) close() {
	q.mu.Lock()
	q.closed = true
	ids := q.pendingIDs()
	q.mu.Unlock()
	for _, id := range ids {
		q.decide(id, forwards.Deny, nil, true)
	}
}

func (q *askQueue) pendingIDs() []int64 {
	ids := slices.Collect(maps.Keys(q.byID))
	slices.Sort(ids)
	return ids
}
