package wormhole

import (
	"context"
	"sync"
)

// maxEarlyMessages bounds how far ahead of the next expected phase a peer
// may send. Honest peers are never more than a few phases ahead.
const maxEarlyMessages = 1024

// inbox delivers numbered messages strictly in order without gaps,
// holding any that arrive early. Duplicates and stale numbers are dropped.
type inbox struct {
	mu     sync.Mutex
	next   int
	early  map[int][]byte
	ready  [][]byte
	signal chan struct{} // has a token while ready is non-empty
}

func newInbox() *inbox {
	return &inbox{early: map[int][]byte{}, signal: make(chan struct{}, 1)}
}

// put files message n. It reports false if n is too far ahead to hold.
func (b *inbox) put(n int, data []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < b.next {
		return true
	}
	if n-b.next >= maxEarlyMessages {
		return false
	}
	if _, dup := b.early[n]; dup {
		return true
	}
	b.early[n] = data
	for {
		msg, ok := b.early[b.next]
		if !ok {
			break
		}
		delete(b.early, b.next)
		b.ready = append(b.ready, msg)
		b.next++
	}
	if len(b.ready) > 0 {
		select {
		case b.signal <- struct{}{}:
		default:
		}
	}
	return true
}

// get returns the next message, waiting until one is ready, failed is
// closed (then it returns failure()) or ctx ends.
func (b *inbox) get(ctx context.Context, failed <-chan struct{}, failure func() error) ([]byte, error) {
	for {
		b.mu.Lock()
		if len(b.ready) > 0 {
			msg := b.ready[0]
			b.ready = b.ready[1:]
			if len(b.ready) > 0 {
				select {
				case b.signal <- struct{}{}:
				default:
				}
			}
			b.mu.Unlock()
			return msg, nil
		}
		b.mu.Unlock()
		select {
		case <-b.signal:
		case <-failed:
			return nil, failure()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
