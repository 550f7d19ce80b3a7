package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// refusedReason is what the peer is told when files are not accepted:
// after "the peer does not accept files", or (to an older gander, which
// reads no kind) after oldRefusedPrefix.
const (
	refusedReason    = "it was started without --accept-files"
	oldRefusedPrefix = "this gander does not accept files: "
)

// userRefusedReason is what an older gander peer (which reads no kind)
// is told of its user's refusal.
const userRefusedReason = "refused by the user"

// Bounds on what a peer's offers can make this side hold. Each offer
// being read, waiting or received holds a subchannel, a few goroutines
// and two 256 KiB buffers; a running one also a file and a directory
// handle. Offers beyond these are refused unread, by the goroutine that
// accepts subchannels: a refusal costs one write and no goroutine, and a
// link too congested to take it slows the peer's next offers down.
const (
	// maxIncomingRunning: transfers receiving data at once. The link is
	// shared, so more would not be faster.
	maxIncomingRunning = 4
	// maxIncomingWaiting: offers being read, waiting for the user's
	// answer or for a running slot.
	maxIncomingWaiting = 16
	// maxOutgoingRunning: our own offers at once, so that a gander peer
	// (which takes maxIncomingRunning+maxIncomingWaiting) never refuses
	// an honest sender for being busy.
	maxOutgoingRunning = maxIncomingRunning
	// answerTimeout: an offer the local user does not answer is refused
	// after this long (the sender gives up after 15 minutes).
	answerTimeout = 10 * time.Minute
	// refusalReportInterval: offers refused unread are reported as one
	// TransfersRefused at most this often, not one event each.
	refusalReportInterval = time.Second
	// maxOfferNotices bounds the TransferFinished events, per
	// refusalReportInterval, of offers that end before the user saw them
	// (refused by a limit, failed, withdrawn while waiting); the rest are
	// counted in a TransfersRefused, so that a peer cycling offers cannot
	// flood the output.
	maxOfferNotices = 10
	// DefaultMaxSessionBytes bounds what one session accepts in all: a
	// few of the largest offers (transfer.DefaultMaxSize); the free space
	// check guards the disk besides.
	DefaultMaxSessionBytes = 50 << 30
)

// busyReason is what an offer refused unread is told.
var busyReason = fmt.Sprintf("too many transfers at once (%d running, %d waiting): offer it again later",
	maxIncomingRunning, maxIncomingWaiting)

type fileTransfers struct {
	mu   sync.Mutex
	last int64
	byID map[int64]*fileTransfer

	// Incoming offers: admitted counts those read, waiting or running
	// (at most maxIncomingRunning+maxIncomingWaiting), running those
	// receiving; slotFreed is closed (and replaced) when one stops.
	admitted, running int
	slotFreed         chan struct{}
	refusedUnread     int // not reported yet
	noticesSince      time.Time
	notices           int   // TransferFinished of unseen offers since noticesSince
	unnoticed         int   // those beyond maxOfferNotices, not reported yet
	reserved          int64 // bytes running transfers have yet to write
	accepted          int64 // bytes accepted this session, kept or under way
	checkedDirs       map[string]bool
	// outgoing holds a token per offer of ours under way.
	outgoing chan struct{}
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
	create bool // make dir if it is missing
	// A refusal the frontend made for a limit, not the person's choice.
	limit  bool
	reason string
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

// admit takes a place for a new incoming offer, if there is one.
func (f *fileTransfers) admit() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.admitted >= maxIncomingRunning+maxIncomingWaiting {
		return false
	}
	f.admitted++
	return true
}

// refused counts an offer refused unread, for the next report.
func (f *fileTransfers) refused() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refusedUnread++
}

// takeRefused returns and resets the counts of unreported refusals and
// unnoticed offers.
func (f *fileTransfers) takeRefused() (refused, unnoticed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	refused, unnoticed = f.refusedUnread, f.unnoticed
	f.refusedUnread, f.unnoticed = 0, 0
	return refused, unnoticed
}

// notice reports whether the end of an offer the user did not see may
// have its own event, or only be counted.
func (f *fileTransfers) notice() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.noticesSince) >= refusalReportInterval {
		f.noticesSince, f.notices = now, 0
	}
	if f.notices < maxOfferNotices {
		f.notices++
		return true
	}
	f.unnoticed++
	return false
}

// leave gives back an admitted offer's place, and its running slot.
func (f *fileTransfers) leave(wasRunning bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admitted--
	if wasRunning {
		f.running--
		if f.slotFreed != nil {
			close(f.slotFreed)
			f.slotFreed = nil
		}
	}
}

// stopRunning gives back a running slot but keeps the offer's place.
func (f *fileTransfers) stopRunning() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	if f.slotFreed != nil {
		close(f.slotFreed)
		f.slotFreed = nil
	}
}

// waitRunning waits for a running slot; false if the offer is withdrawn
// or done first.
func (f *fileTransfers) waitRunning(withdrawn, done <-chan struct{}) bool {
	for {
		f.mu.Lock()
		if f.running < maxIncomingRunning {
			f.running++
			f.mu.Unlock()
			return true
		}
		if f.slotFreed == nil {
			f.slotFreed = make(chan struct{})
		}
		freed := f.slotFreed
		f.mu.Unlock()
		select {
		case <-freed:
		case <-withdrawn:
			return false
		case <-done:
			return false
		}
	}
}

// reserve checks an offer against the session's byte budget and the
// disk, and if it fits counts it as accepted and its bytes as reserved.
func (f *fileTransfers) reserve(in *transfer.Incoming, dir string, maxSession int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(in, dir, maxSession); err != nil {
		return err
	}
	f.accepted += in.Offer.Size
	f.reserved += in.Offer.Size
	return nil
}

// check is reserve without reserving: could the offer fit now?
func (f *fileTransfers) check(in *transfer.Incoming, dir string, maxSession int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkLocked(in, dir, maxSession)
}

func (f *fileTransfers) checkLocked(in *transfer.Incoming, dir string, maxSession int64) error {
	if err := in.Fits(dir, f.reserved); err != nil {
		return err
	}
	if size := in.Offer.Size; maxSession > 0 && size > maxSession-f.accepted {
		return &transfer.LimitError{Reason: fmt.Sprintf("over this session's limit: %s offered, %s of %s left",
			transfer.FormatSize(size), transfer.FormatSize(max(maxSession-f.accepted, 0)), transfer.FormatSize(maxSession))}
	}
	return nil
}

// wrote counts n reserved bytes as written.
func (f *fileTransfers) wrote(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserved -= n
}

// unreserve ends a reservation of which left bytes were not written; a
// failed transfer left nothing, so its size no longer counts.
func (f *fileTransfers) unreserve(size, left int64, failed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserved -= left
	if failed {
		f.accepted -= size
	}
}

// sessionLeft is what the session budget still allows (-1: no limit).
func (f *fileTransfers) sessionLeft(maxSession int64) int64 {
	if maxSession <= 0 {
		return -1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return max(maxSession-f.accepted, 0)
}

// firstVisit reports whether dir is new to this session (to be checked
// for partials an earlier run left).
func (f *fileTransfers) firstVisit(dir string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.checkedDirs == nil {
		f.checkedDirs = map[string]bool{}
	}
	if f.checkedDirs[dir] {
		return false
	}
	f.checkedDirs[dir] = true
	return true
}

// outgoingSlots is the semaphore of our offers under way.
func (f *fileTransfers) outgoingSlots() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outgoing == nil {
		f.outgoing = make(chan struct{}, maxOutgoingRunning)
	}
	return f.outgoing
}

// limits are the transfer limits the configuration asks for.
func (c *controller) limits() (transfer.Limits, int64) {
	fl := c.cfg.FileLimits
	l := transfer.DefaultLimits
	switch {
	case fl.MaxFileSize > 0:
		l.MaxSize = fl.MaxFileSize
	case fl.MaxFileSize < 0:
		l.MaxSize = 0
	}
	if fl.IdleTimeout > 0 {
		l.IdleTimeout = fl.IdleTimeout
	}
	session := int64(DefaultMaxSessionBytes)
	switch {
	case fl.MaxSessionBytes > 0:
		session = fl.MaxSessionBytes
	case fl.MaxSessionBytes < 0:
		session = 0
	}
	return l, session
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
	conn, ctx := c.conn, c.runCtx
	switch {
	case conn == nil:
		c.pendingSends = append(c.pendingSends, paths...)
		return
	case !c.peer.Accepts(FeatureFiles):
		c.emit(CommandFailed{Err: peerLacks(c.peer, FeatureFiles)})
		return
	}
	for _, path := range paths {
		tctx, cancel := context.WithCancel(ctx)
		id := c.files.add(&fileTransfer{cancel: cancel})
		name := displayName(path)
		c.wg.Add(1)
		slots := c.files.outgoingSlots()
		go func() {
			defer c.wg.Done()
			defer cancel()
			defer c.files.remove(id)
			c.emit(TransferFinished{ID: id, Name: name, Outgoing: true, Err: c.send(tctx, conn, slots, id, path)})
		}()
	}
}

// send prepares path (so that its offer shows the real size while the
// peer decides), waits for an outgoing slot and offers it.
func (c *controller) send(ctx context.Context, conn *dilation.Conn, slots chan struct{}, id int64, path string) error {
	name := displayName(path)
	out, err := transfer.Prepare(path)
	if err != nil {
		return err
	}
	defer out.Close()
	o := out.Offer()
	c.emit(TransferProgress{ID: id, Name: name, Outgoing: true, Size: o.Size, Files: o.Files, Waiting: true})
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
	case <-ctx.Done():
		return &transfer.CanceledError{Reason: "canceled"}
	}
	sc, err := conn.Open(ctx, transfer.Subprotocol)
	if err != nil {
		return err
	}
	return out.Send(ctx, sc, c.progressReporter(id, name, true))
}

// receiveOffers reads each offer the peer opens a subchannel for, up to
// the bounds above; beyond them offers are refused unread, and reported
// together every refusalReportInterval.
func (c *controller) receiveOffers(ctx context.Context, l *dilation.Listener) {
	defer l.Close()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(refusalReportInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-ctx.Done():
				c.reportRefused()
				return
			}
			c.reportRefused()
		}
	}()
	for {
		sc, err := l.Accept(ctx)
		if err != nil {
			return
		}
		if !c.files.admit() {
			transfer.Reject(sc, busyReason)
			c.files.refused()
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.receive(ctx, sc)
		}()
	}
}

func (c *controller) reportRefused() {
	refused, unnoticed := c.files.takeRefused()
	if refused > 0 {
		c.emit(TransfersRefused{Count: refused, Reason: busyReason, Unread: true})
	}
	if unnoticed > 0 {
		c.emit(TransfersRefused{Count: unnoticed, Reason: unnoticedReason})
	}
}

// unnoticedReason sums up the offers beyond maxOfferNotices.
var unnoticedReason = fmt.Sprintf("refused, failed or withdrawn, not shown one by one beyond %d a second", maxOfferNotices)

// receive reads one admitted offer, checks it against the limits, asks
// (or decides), waits for a running slot, and receives it if accepted.
// A folder that cannot take the files is reported (TransferFolderFailed)
// and the user asked again; the peer hears nothing of it.
func (c *controller) receive(ctx context.Context, sc *dilation.Subchannel) {
	running := false
	defer func() { c.files.leave(running) }()
	in, err := transfer.ReadOffer(ctx, sc)
	if err != nil {
		if ctx.Err() == nil && c.files.notice() {
			c.emit(TransferFinished{Name: "(offer)", Err: err})
		}
		return
	}
	in.KindedRefusals = c.peer.Has(FeatureFilesRefusals)
	limits, maxSession := c.limits()
	in.Limits = limits
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &fileTransfer{cancel: cancel, answer: make(chan offerAnswer, 1)}
	id := c.files.add(t)
	defer c.files.remove(id)
	offer := in.Offer
	offered := TransferOffered{ID: id, Name: offer.Name, Directory: offer.Kind == transfer.KindDirectory,
		Size: offer.Size, Files: offer.Files, SaveDir: c.cfg.SaveDir}
	shown := false // a TransferOffered was emitted: its end must be too
	finished := func(ev TransferFinished) {
		if shown || c.files.notice() {
			c.emit(ev)
		}
	}
	refuse := func(kind transfer.RefusalKind, reason string) {
		told := reason
		switch {
		case in.KindedRefusals:
		case kind == transfer.RefusalByUser:
			told = userRefusedReason
		case kind == transfer.RefusalPolicy:
			told = oldRefusedPrefix + reason
		}
		in.RefuseWith(kind, told)
		finished(TransferFinished{ID: id, Name: offer.Name, Err: &RefusedHereError{Kind: kind, Reason: reason}})
	}
	asking := !c.cfg.AcceptFiles && (c.cfg.AskPeer || c.cfg.AskFiles)
	if !c.cfg.AcceptFiles && !asking {
		refuse(transfer.RefusalPolicy, refusedReason)
		return
	}
	// What cannot fit is refused before anyone is asked.
	var limit *transfer.LimitError
	if err := c.files.check(in, c.cfg.SaveDir, maxSession); errors.As(err, &limit) {
		refuse(transfer.RefusalLimit, limit.Reason) // other errors may not hold for the directory the user picks
		return
	}

	wait := cmp.Or(c.cfg.FileAnswerTimeout, answerTimeout)
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	if asking {
		c.emit(offered)
		shown = true
	}
	for {
		answer := offerAnswer{accept: true}
		if asking {
			select {
			case answer = <-t.answer:
			case <-in.Withdrawn():
				in.Refuse("")
				c.emit(TransferFinished{ID: id, Name: offer.Name, Err: ErrOfferWithdrawn})
				return
			case <-timeout.C:
				refuse(transfer.RefusalTimeout, fmt.Sprintf("not answered within %v", wait))
				return
			case <-tctx.Done():
			}
			switch {
			case !answer.accept && answer.limit:
				refuse(transfer.RefusalLimit, cmp.Or(answer.reason, "too many offers at once"))
				return
			case !answer.accept:
				refuse(transfer.RefusalByUser, "")
				return
			}
		}
		dir := expandHome(cmp.Or(answer.dir, c.cfg.SaveDir))
		if err := prepareFolder(dir, answer.create); err != nil {
			if !asking {
				c.cfg.Logger.Warn("cannot save an accepted offer", "err", err)
				refuse(transfer.RefusalCannotSave, "cannot save files here")
				return
			}
			c.emit(folderFailed(offered, err))
			continue
		}
		if !c.files.waitRunning(in.Withdrawn(), tctx.Done()) {
			in.Refuse("")
			finished(TransferFinished{ID: id, Name: offer.Name, Err: ErrOfferWithdrawn})
			return
		}
		running = true
		shown = true // the accepted and received are always reported
		c.removeStalePartials(dir)
		if err := c.files.reserve(in, dir, maxSession); err != nil {
			refuse(transfer.RefusalLimit, limitReason(err))
			return
		}
		c.emit(TransferAccepted{ID: id, Name: offer.Name, Directory: offer.Kind == transfer.KindDirectory,
			Size: offer.Size, Files: offer.Files, Dir: dir, MaxSize: limits.MaxSize, SessionLeft: c.files.sessionLeft(maxSession)})
		var done int64
		report := c.progressReporter(id, offer.Name, false)
		saved, err := in.Accept(tctx, dir, func(p transfer.Progress) {
			c.files.wrote(p.Done - done)
			done = p.Done
			report(p)
		})
		c.files.unreserve(offer.Size, offer.Size-done, err != nil)
		var folder *transfer.FolderError
		if errors.As(err, &folder) {
			// Nothing was sent: give the slot back and ask again (or,
			// unasked, refuse: the offer must still be answered).
			c.files.stopRunning()
			running = false
			if asking {
				c.emit(folderFailed(offered, err))
				continue
			}
			c.cfg.Logger.Warn("cannot save an accepted offer", "err", err)
			refuse(transfer.RefusalCannotSave, "cannot save files here")
			return
		}
		c.emit(TransferFinished{ID: id, Name: offer.Name, SavedAs: saved, Err: err})
		return
	}
}

// folderFailed is the event for an offer whose folder failed.
func folderFailed(offered TransferOffered, err error) TransferFolderFailed {
	ev := TransferFolderFailed{Offer: offered, Err: err}
	var folder *transfer.FolderError
	if errors.As(err, &folder) {
		ev.Dir, ev.Missing = folder.Dir, folder.Missing()
	}
	return ev
}

// expandHome turns a leading "~" or "~/" into the home directory, as a
// shell would (people type "~/incoming").
func expandHome(dir string) string {
	if dir != "~" && !strings.HasPrefix(dir, "~/") {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return dir
	}
	return filepath.Join(home, dir[1:])
}

// prepareFolder checks that dir is a folder, making it first if create
// is set; the error is a *transfer.FolderError.
func prepareFolder(dir string, create bool) error {
	if create {
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return &transfer.FolderError{Dir: dir, Err: err}
		}
	}
	info, err := os.Stat(dir)
	switch {
	case err != nil:
		return &transfer.FolderError{Dir: dir, Err: err}
	case !info.IsDir():
		return &transfer.FolderError{Dir: dir, Err: errors.New("not a folder")}
	}
	return nil
}

// limitReason is what the peer is told of a limit (no local paths).
func limitReason(err error) string {
	var limit *transfer.LimitError
	if errors.As(err, &limit) {
		return limit.Reason
	}
	return "cannot save files here"
}

// removeStalePartials removes, the first time this session saves into
// dir, the partial files an earlier gander left there when it was killed,
// and reports them.
func (c *controller) removeStalePartials(dir string) {
	if !c.files.firstVisit(dir) {
		return
	}
	found, err := transfer.RemoveStalePartials(dir)
	if err != nil {
		c.cfg.Logger.Warn("removing stale partial files", "dir", dir, "err", err)
	}
	if len(found.Removed) > 0 || len(found.Unknown) > 0 {
		c.cfg.Logger.Info("stale partial files", "dir", dir, "removed", found.Removed, "left", found.Unknown)
		c.emit(PartialsRemoved{Dir: dir, Removed: found.Removed, Unknown: found.Unknown})
	}
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
