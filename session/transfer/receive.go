package transfer

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"time"
)

// maxNumbered bounds the search for a free name: "a (1).txt" … "a (999).txt".
const maxNumbered = 999

// Incoming is an offer read from the peer, waiting for Accept or Refuse;
// exactly one of them must be called, and it closes the channel.
type Incoming struct {
	Offer Offer
	// Limits bound the transfer; ReadOffer sets DefaultLimits. Change
	// them before Fits and Accept.
	Limits Limits
	// KindedRefusals: the peer reads REFUSE's kind form, so RefuseWith
	// tells it the kind (set it from the peer's capabilities).
	KindedRefusals bool

	c         *conn
	answered  atomic.Bool
	accepted  atomic.Bool
	first     frame         // what followed the offer, once watched is closed
	watched   chan struct{} // closed when first is set, or on close
	withdrawn chan struct{}

	// create opens a new file for writing; tests replace it to fail.
	create func(root *os.Root, name string) (io.WriteCloser, error)
	// space says what the file system holding dir has free; tests
	// replace it.
	space func(dir string) (Space, bool, error)
}

// ReadOffer reads the peer's offer from ch, waiting at most 30 s for it
// (then the peer is told, and the error is a *TimeoutError). Nothing is
// written to disk.
// The offer's name is checked: an unsafe one is refused with the peer
// told why, and returned as *UnsafeNameError. On error ReadOffer closes
// ch.
func ReadOffer(ctx context.Context, ch Channel) (*Incoming, error) {
	c := newConn(ch)
	unwatch := c.watch(ctx)
	o, err := readOffer(c)
	unwatch()
	if err != nil {
		return nil, c.finish(err)
	}
	in := &Incoming{
		Offer:     o,
		Limits:    DefaultLimits,
		c:         c,
		watched:   make(chan struct{}),
		withdrawn: make(chan struct{}),
		create:    createFile,
		space:     diskSpace,
	}
	go in.watch()
	return in, nil
}

func readOffer(c *conn) (Offer, error) {
	m, _, err := c.await(offerTimeout, "no offer received within %v")
	if err != nil {
		return Offer{}, err
	}
	om, ok := m.(offerMsg)
	if !ok {
		return Offer{}, protocolErrorf("%T instead of an offer", m)
	}
	o := Offer{Name: om.Name, Kind: om.Kind, Size: om.Size, Files: om.Files, Dirs: om.Dirs}
	switch {
	case om.DigestAlg != digestAlg:
		return Offer{}, protocolErrorf("unsupported digest %q", om.DigestAlg)
	case o.Kind == KindFile && (o.Files != 1 || o.Dirs != 0):
		return Offer{}, protocolErrorf("file offer with %d files and %d directories", o.Files, o.Dirs)
	}
	if err := checkName(o.Name); err != nil {
		return Offer{}, err
	}
	return o, nil
}

// watch takes the frame after the offer, so that a sender withdrawing
// its offer is seen while our user still decides. Before ACCEPT the
// sender may only send CANCEL or close.
func (in *Incoming) watch() {
	defer close(in.watched)
	select {
	case f := <-in.c.frames:
		if f.msg != nil && !in.accepted.Load() {
			if _, ok := f.msg.(cancelMsg); !ok {
				in.c.release(f.buf)
				f = frame{err: protocolErrorf("%T before ACCEPT", f.msg)}
			}
		}
		in.first = f
		if f.err != nil || !in.accepted.Load() {
			close(in.withdrawn)
		}
	case <-in.c.quit:
	}
}

// Withdrawn is closed if the offer ends before it is answered: the sender
// canceled it or the channel failed. Accept and Refuse then say why.
func (in *Incoming) Withdrawn() <-chan struct{} { return in.withdrawn }

var errAnswered = errors.New("transfer: offer already answered")

// Fits reports, as a *LimitError whose reason the peer may be told,
// whether the offer is within in.Limits and fits the disk holding dir,
// leaving it some room (5%, at most 1 GiB) besides reserved bytes
// promised to other transfers.
func (in *Incoming) Fits(dir string, reserved int64) error {
	o, l := in.Offer, in.Limits
	switch {
	case l.MaxSize > 0 && o.Size > l.MaxSize:
		return &LimitError{Reason: fmt.Sprintf("too large: %s, the limit is %s", FormatSize(o.Size), FormatSize(l.MaxSize))}
	case l.MaxEntries > 0 && o.Files+o.Dirs > l.MaxEntries:
		return &LimitError{Reason: fmt.Sprintf("too many files: %d, the limit is %d", o.Files+o.Dirs, l.MaxEntries)}
	}
	sp, known, err := in.space(dir)
	if err != nil || !known {
		return err // a missing directory fails Accept anyway
	}
	keep := keepFree(sp.Total)
	free := max(sp.Free-reserved, 0)
	if o.Size > free-keep {
		return &LimitError{Reason: fmt.Sprintf("not enough room: needs %s, %s free (%s is kept free)",
			FormatSize(o.Size), FormatSize(free), FormatSize(keep))}
	}
	if entries := int64(o.Files + o.Dirs + 1); sp.Files > 0 && entries > sp.FreeFiles {
		return &LimitError{Reason: fmt.Sprintf("not enough room: needs %d files, %d free", entries, sp.FreeFiles)}
	}
	return nil
}

// Refuse tells the peer no, with a reason it may show, and closes the
// channel.
func (in *Incoming) Refuse(reason string) error {
	return in.RefuseWith(RefusalUnspecified, reason)
}

// RefuseWith is Refuse saying who or what refused, to a peer that reads
// it (KindedRefusals); others get the reason alone.
func (in *Incoming) RefuseWith(kind RefusalKind, reason string) error {
	if in.answered.Swap(true) {
		return errAnswered
	}
	var m message = refuseMsg{Reason: truncateReason(reason)}
	if in.KindedRefusals && kind != RefusalUnspecified {
		m = refuseKindMsg{Kind: kind, Reason: truncateReason(reason)}
	}
	var err error
	select {
	case <-in.withdrawn: // nobody to tell
	default:
		err = in.c.send(m)
		if err == nil {
			err = in.c.flush()
		}
	}
	err = in.c.finish(err)
	<-in.watched
	return err
}

// Accept receives the offer into the directory dir and returns the path
// it was saved as. It is written under a hidden temporary name in dir and
// renamed only once its size and digest are verified; an existing file or
// directory is never replaced: the name gets a number, as in
// "name (1).ext". On any error nothing is left in dir. Cancelling ctx
// stops the transfer and tells the peer; so does a peer that sends
// nothing for Limits.IdleTimeout (a *TimeoutError) and a disk that fills
// up meanwhile (a *LimitError). Accept does not check the limits: Fits
// does, before.
//
// If dir cannot be written to (missing, not a directory, no permission)
// Accept returns a *FolderError before telling the peer anything: the
// offer still waits for Accept with another directory, or Refuse.
func (in *Incoming) Accept(ctx context.Context, dir string, progress func(Progress)) (string, error) {
	if in.answered.Swap(true) {
		return "", errAnswered
	}
	var s *sink
	select {
	case <-in.withdrawn: // receive reports why
	default:
		var err error
		if s, err = in.prepare(dir, progress); err != nil {
			in.answered.Store(false)
			return "", &FolderError{Dir: dir, Err: err}
		}
	}
	unwatch := in.c.watch(ctx)
	saved, err := in.receive(s)
	unwatch()
	if err := in.c.finish(err); err != nil {
		return "", err
	}
	return saved, nil
}

// prepare opens dir and creates the partial file or directory there.
func (in *Incoming) prepare(dir string, progress func(Progress)) (*sink, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	s := &sink{root: root, dir: dir, offer: in.Offer, create: in.create, space: in.space, h: sha256.New(), progress: progress}
	if err := s.start(); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

func (in *Incoming) receive(s *sink) (saved string, err error) {
	c := in.c
	if s == nil {
		_, _, err := c.interpret(in.first)
		return "", err
	}
	defer s.root.Close()
	defer func() {
		if err != nil {
			s.discard()
		}
	}()
	select {
	case <-in.withdrawn:
		_, _, err := c.interpret(in.first)
		return "", err
	default:
	}
	c.idle = cmp.Or(in.Limits.IdleTimeout, DefaultIdleTimeout)

	in.accepted.Store(true)
	if err := c.send(acceptMsg{}); err != nil {
		return "", err
	}
	if err := c.flush(); err != nil {
		return "", err
	}
	// The first frame after ACCEPT is the watcher's; a peer that sends
	// none is as idle as one that stops later.
	idle := time.NewTimer(c.idle)
	select {
	case <-in.watched:
		idle.Stop()
	case <-idle.C:
		return "", timeoutErrorf(c.idle, idleReason)
	}
	m, buf, err := c.interpret(in.first)
	for err == nil {
		switch m := m.(type) {
		case entryMsg:
			err = s.entry(m)
		case dataMsg:
			err = s.data(m)
			c.release(buf)
		case doneMsg:
			return in.commit(s, m)
		default:
			err = protocolErrorf("%T during the transfer", m)
		}
		if err == nil {
			m, buf, err = c.await(c.idle, idleReason)
		}
	}
	return "", err
}

// idleReason is what both sides are told when data stops coming.
const idleReason = "nothing received for %v"

// commit checks the trailer, then (once nothing can cancel any more)
// moves the partial file to its final name and acknowledges.
func (in *Incoming) commit(s *sink, done doneMsg) (string, error) {
	if err := s.finish(done.Digest); err != nil {
		return "", err
	}
	if !in.c.end(nil) {
		return "", in.c.err()
	}
	name, err := s.rename()
	if err != nil {
		in.c.tellPeer(reasonFor(err))
		return "", err
	}
	if err := in.c.send(ackMsg{}); err == nil {
		in.c.closeWrite()
	}
	// The file is whole and verified: a lost ACK does not undo that.
	return filepath.Join(s.root.Name(), name), nil
}

// sink writes what arrives into a partial file or directory and checks
// it against the offer.
type sink struct {
	root     *os.Root
	dir      string // root's path, for checking the free space
	offer    Offer
	create   func(root *os.Root, name string) (io.WriteCloser, error)
	space    func(dir string) (Space, bool, error)
	h        hash.Hash
	progress func(Progress)

	partial string         // name in root
	file    io.WriteCloser // being written, nil between files
	left    int64          // bytes file still expects
	p       Progress
	dirs    int
	started int    // files begun
	scratch []byte // for re-encoding ENTRY bodies
	// unchecked counts bytes written since the free space was checked.
	unchecked int64
}

func (s *sink) start() error {
	s.p = Progress{Size: s.offer.Size, Files: s.offer.Files}
	for range 10 {
		s.partial = partialName(s.offer.Name, partialSuffix())
		var err error
		if s.offer.Kind == KindDirectory {
			err = s.root.Mkdir(s.partial, 0o777)
		} else {
			s.file, err = s.create(s.root, s.partial)
			s.left, s.started = s.offer.Size, 1
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return fmt.Errorf("transfer: no free temporary name in %s", s.root.Name())
}

func (s *sink) entry(e entryMsg) error {
	if s.offer.Kind != KindDirectory {
		return protocolErrorf("ENTRY in a file transfer")
	}
	if s.left > 0 {
		return fmt.Errorf("%w: a file ended early", ErrSizeMismatch)
	}
	if err := checkPath(e.Path); err != nil {
		return err
	}
	s.scratch = appendFrame(s.scratch[:0], e)
	s.h.Write(s.scratch[frameHeaderLen:])
	name := filepath.FromSlash(path.Join(s.partial, e.Path))
	if e.Dir {
		if s.dirs++; s.dirs > s.offer.Dirs {
			return fmt.Errorf("%w: more directories than offered", ErrSizeMismatch)
		}
		return s.root.Mkdir(name, 0o777)
	}
	if s.started++; s.started > s.offer.Files {
		return fmt.Errorf("%w: more files than offered", ErrSizeMismatch)
	}
	if e.Size > s.offer.Size-s.p.Done {
		return fmt.Errorf("%w: more bytes than offered", ErrSizeMismatch)
	}
	f, err := s.create(s.root, name)
	if err != nil {
		return err
	}
	s.file, s.left = f, e.Size
	if e.Size == 0 {
		return s.endFile()
	}
	return nil
}

func (s *sink) data(b []byte) error {
	switch {
	case s.file == nil:
		return protocolErrorf("DATA outside a file")
	case int64(len(b)) > s.left:
		return fmt.Errorf("%w: more bytes than offered", ErrSizeMismatch)
	}
	if s.unchecked += int64(len(b)); s.unchecked >= roomCheckInterval {
		s.unchecked = 0
		if err := s.checkRoom(); err != nil {
			return err
		}
	}
	if _, err := s.file.Write(b); err != nil {
		return err
	}
	s.h.Write(b)
	s.left -= int64(len(b))
	s.p.Done += int64(len(b))
	if s.left == 0 {
		return s.endFile()
	}
	s.report()
	return nil
}

// checkRoom stops the transfer before the disk fills: something else may
// be writing to it too.
func (s *sink) checkRoom() error {
	sp, known, err := s.space(s.dir)
	if err != nil || !known {
		return nil // the writes will say if the disk is full
	}
	if left := s.offer.Size - s.p.Done; left > sp.Free {
		return &LimitError{Reason: fmt.Sprintf("not enough room left: needs %s more, %s free", FormatSize(left), FormatSize(sp.Free))}
	}
	return nil
}

func (s *sink) endFile() error {
	err := s.file.Close()
	s.file = nil
	s.p.FilesDone++
	s.report()
	return err
}

func (s *sink) report() {
	if s.progress != nil {
		s.progress(s.p)
	}
}

// finish checks the whole against the offer and the sender's digest.
func (s *sink) finish(digest []byte) error {
	if s.left > 0 {
		return fmt.Errorf("%w: fewer bytes than offered", ErrSizeMismatch)
	}
	if s.file != nil { // an empty single file
		if err := s.endFile(); err != nil {
			return err
		}
	}
	if s.p.Done != s.offer.Size || s.p.FilesDone != s.offer.Files || s.dirs != s.offer.Dirs {
		return fmt.Errorf("%w: fewer files or directories than offered", ErrSizeMismatch)
	}
	if !bytes.Equal(digest, s.h.Sum(nil)) {
		return ErrDigestMismatch
	}
	return nil
}

// rename gives the partial its final name, the first free one.
func (s *sink) rename() (string, error) {
	for i := range maxNumbered + 1 {
		name := s.offer.Name
		if i > 0 {
			name = numberedName(name, s.offer.Kind, i)
		}
		if err := renameNoReplace(s.root, s.partial, name); !errors.Is(err, fs.ErrExist) {
			return name, err
		}
	}
	return "", fmt.Errorf("transfer: %q and %d numbered names exist", s.offer.Name, maxNumbered)
}

// discard removes the partial file or directory.
func (s *sink) discard() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.root.RemoveAll(s.partial)
}

func createFile(root *os.Root, name string) (io.WriteCloser, error) {
	return root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
}

// rejectGrace bounds how long Reject may block on a congested link.
const rejectGrace = 2 * time.Second

// Reject refuses, with a reason the peer is shown, whatever the peer
// offers on ch, without reading the offer or starting a transfer (the
// receiver is too busy to), and closes ch at once: refusals come in
// floods, and a Dilation subchannel delivers the refusal before the close.
// (Over TCP, closing with the offer unread could reset the connection.)
func Reject(ch Channel, reason string) {
	force := time.AfterFunc(rejectGrace, func() { ch.Close() })
	defer force.Stop()
	ch.Write(appendFrame(nil, refuseMsg{Reason: truncateReason(reason)}))
	ch.Close()
}
