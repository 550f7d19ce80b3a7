package mailbox

import "context"

// MaxUndelivered exposes the queue bound to the external tests.
const MaxUndelivered = maxUndelivered

// Undelivered counts the peer messages c holds for Messages.
func Undelivered(ctx context.Context, c *Client) (int, error) {
	return await(ctx, c, func(l *loop, w waiter[int]) { w.answer(len(l.outbox), nil) })
}
