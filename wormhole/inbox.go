package wormhole

import (
	"context"
	"fmt"
	"sync"
)

const (
	// maxEarlyMessages bounds how far ahead of the next expected phase a
	// peer may send. Honest peers are never more than a few phases ahead.
	maxEarlyMessages = 1024
	// maxHeldBytes bounds what one inbox holds, early and unread
	// together: the peer cannot make us keep more than this of what the
	// application has not read yet. It is room for four messages of
	// MaxMessageSize; honest peers send a few small ones.
	maxHeldBytes = 8 << 20
)

// inbox delivers numbered messages strictly in order without gaps,
// holding any that arrive early. Duplicates and stale numbers are dropped.
type inbox struct {
	mu     sync.Mutex
	next   int
	early  map[int][]byte
	ready  [][]byte
	held   int           // bytes in early and ready
	signal chan struct{} // has a token while ready is non-empty
}

func newInbox() *inbox {
	return &inbox{early: map[int][]byte{}, signal: make(chan struct{}, 1)}
}

// put files message n. It fails if n is too far ahead to hold, or if the
// inbox already holds maxHeldBytes.
func (b *inbox) put(n int, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < b.next {
		return nil
	}
	if n-b.next >= maxEarlyMessages {
		return fmt.Errorf("phase %d is more than %d ahead of the next one", n, maxEarlyMessages)
	}
	if _, dup := b.early[n]; dup {
		return nil
	}
	if b.held+len(data) > maxHeldBytes {
		return fmt.Errorf("more than %d bytes of messages are waiting to be read", maxHeldBytes)
	}
	b.held += len(data)
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
	return nil
}

// get returns the next message, waiting until one is ready, failed is
// closed (then it returns failure()) or ctx ends.
func (b *inbox) get(ctx context.Context, failed <-chan struct{}, failure func() error) ([]byte, error) {
	for {
		b.mu.Lock()
		if len(b.ready) > 0 {
			msg := b.ready[0]
			b.ready[0] = nil
			b.ready = b.ready[1:]
			b.held -= len(msg)
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
