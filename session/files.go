package session

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/session/transfer"
)

// File transfers run over gander's own subprotocol (session/transfer),
// one subchannel each, with gander peers only. Every transfer has an ID
// that its events carry and that AcceptTransfer, RefuseTransfer and
// CancelTransfer name.

// Errors a TransferFinished or CommandFailed carries.
var (
	ErrPeerCannotFiles = errors.New("the peer does not receive files (only gander does; fowl forwards ports only)")
	ErrOfferWithdrawn  = errors.New("the peer withdrew the offer")
	ErrNoSuchTransfer  = errors.New("no such transfer")
)

// refusedReason is what the peer is told when files are not accepted.
const refusedReason = "this gander does not accept files"

type fileTransfers struct {
	mu   sync.Mutex
	last int64
	byID map[int64]*fileTransfer
}

// fileTransfer is one transfer in progress: cancel stops it; answer is
// set while an incoming offer waits for the user.
type fileTransfer struct {
	cancel context.CancelFunc
	answer chan offerAnswer
}

type offerAnswer struct {
	accept bool
	dir    string
}

func (f *fileTransfers) add(t *fileTransfer) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last++
	f.byID[f.last] = t
	return f.last
}

func (f *fileTransfers) get(id int64) *fileTransfer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byID[id]
}

func (f *fileTransfers) remove(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byID, id)
}

// progressReporter turns a transfer's progress callbacks into
// TransferProgress events, at most one every TrafficInterval.
func (c *controller) progressReporter(id int64, name string, outgoing bool) func(transfer.Progress) {
	var last time.Time
	return func(p transfer.Progress) {
		now := time.Now()
		if now.Sub(last) < TrafficInterval && p.Done < p.Size {
			return
		}
		last = now
		c.emit(TransferProgress{ID: id, Name: name, Outgoing: outgoing,
			Size: p.Size, Done: p.Done, Files: p.Files, FilesDone: p.FilesDone})
	}
}

// sendFiles offers each path on its own subchannel, once the peer is
// connected.
func (c *controller) sendFiles(paths []string) {
	c.mu.Lock()
	conn, ctx, gander := c.conn, c.runCtx, c.peerIsGander
	if conn == nil {
		c.pendingSends = append(c.pendingSends, paths...)
	}
	c.mu.Unlock()
	switch {
	case conn == nil:
		return
	case !gander:
		c.emit(CommandFailed{Err: ErrPeerCannotFiles})
		return
	}
	for _, path := range paths {
		tctx, cancel := context.WithCancel(ctx)
		id := c.files.add(&fileTransfer{cancel: cancel})
		name := displayName(path)
		c.emit(TransferProgress{ID: id, Name: name, Outgoing: true})
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer cancel()
			defer c.files.remove(id)
			err := c.send(tctx, conn, path, c.progressReporter(id, name, true))
			c.emit(TransferFinished{ID: id, Name: name, Outgoing: true, Err: err})
		}()
	}
}

func (c *controller) send(ctx context.Context, conn *dilation.Conn, path string, progress func(transfer.Progress)) error {
	sc, err := conn.Open(ctx, transfer.Subprotocol)
	if err != nil {
		return err
	}
	return transfer.Send(ctx, sc, path, progress)
}

// receiveOffers reads each offer the peer opens a subchannel for.
func (c *controller) receiveOffers(ctx context.Context, l *dilation.Listener) {
	defer l.Close()
	for {
		sc, err := l.Accept(ctx)
		if err != nil {
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.receive(ctx, sc)
		}()
	}
}

// receive reads one offer, asks (or decides), and receives it if accepted.
func (c *controller) receive(ctx context.Context, sc *dilation.Subchannel) {
	in, err := transfer.ReadOffer(ctx, sc)
	if err != nil {
		if ctx.Err() == nil {
			c.emit(TransferFinished{Name: "(offer)", Err: err})
		}
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &fileTransfer{cancel: cancel, answer: make(chan offerAnswer, 1)}
	id := c.files.add(t)
	defer c.files.remove(id)
	offer := in.Offer

	var answer offerAnswer
	switch {
	case c.cfg.AcceptFiles:
		answer.accept = true
	case c.cfg.AskPeer:
		c.emit(TransferOffered{ID: id, Name: offer.Name, Directory: offer.Kind == transfer.KindDirectory,
			Size: offer.Size, Files: offer.Files, SaveDir: c.cfg.SaveDir})
		select {
		case answer = <-t.answer:
		case <-in.Withdrawn():
			in.Refuse("")
			c.emit(TransferFinished{ID: id, Name: offer.Name, Err: ErrOfferWithdrawn})
			return
		case <-tctx.Done():
		}
	}
	if !answer.accept {
		in.Refuse(refusedReason)
		c.emit(TransferFinished{ID: id, Name: offer.Name, Err: &transfer.RefusedError{Reason: "refused here"}})
		return
	}
	dir := answer.dir
	if dir == "" {
		dir = c.cfg.SaveDir
	}
	saved, err := in.Accept(tctx, dir, c.progressReporter(id, offer.Name, false))
	c.emit(TransferFinished{ID: id, Name: offer.Name, SavedAs: saved, Err: err})
}

// answerOffer hands the user's answer to a waiting offer.
func (c *controller) answerOffer(id int64, a offerAnswer) {
	t := c.files.get(id)
	if t == nil || t.answer == nil {
		c.emit(CommandFailed{Err: fmt.Errorf("%w %d waiting for an answer", ErrNoSuchTransfer, id)})
		return
	}
	select {
	case t.answer <- a:
	default:
		c.emit(CommandFailed{Err: fmt.Errorf("transfer %d is already answered", id)})
	}
}

// cancelTransfer stops a transfer; an offer still waiting is refused.
func (c *controller) cancelTransfer(id int64) {
	t := c.files.get(id)
	if t == nil {
		c.emit(CommandFailed{Err: fmt.Errorf("%w %d", ErrNoSuchTransfer, id)})
		return
	}
	t.cancel()
}

// displayName is how a path we send is shown: its last element.
func displayName(path string) string {
	return filepath.Base(filepath.Clean(path))
}
