package transfer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
)

// digestAlg is the only digest algorithm: the offer names it, the
// trailer carries the digest (the sender reads each file once, so it only
// knows the digest at the end).
const digestAlg = "sha256"

// Send offers path (a file or a directory) on ch, waits for the peer's
// answer and, if accepted, streams it. It returns nil once the peer has
// confirmed the whole transfer, *RefusedError if the peer refused,
// *CanceledError if either side stopped it (cancelling ctx tells the
// peer), and *TimeoutError if the peer did not answer the offer within
// 15 minutes, stopped reading for a minute, or did not confirm within a
// minute. Inside a directory only regular files and directories are sent;
// symbolic links and special files are skipped. Send closes ch.
func Send(ctx context.Context, ch Channel, path string, progress func(Progress)) error {
	o, err := Prepare(path)
	if err != nil {
		ch.Close()
		return err
	}
	defer o.Close()
	return o.Send(ctx, ch, progress)
}

// Outgoing is a file or directory ready to offer: Prepare has opened it
// and counted what it holds, so its Offer says the real size before the
// peer is asked.
type Outgoing struct{ p *sendPlan }

// Prepare opens path (a file or a directory) and plans its offer; Close
// releases it. The errors are Send's before it offers.
func Prepare(path string) (*Outgoing, error) {
	p, err := plan(path)
	if err != nil {
		return nil, err
	}
	return &Outgoing{p: p}, nil
}

// Offer is what will be offered.
func (o *Outgoing) Offer() Offer { return o.p.offer }

// Close releases the files Prepare opened.
func (o *Outgoing) Close() { o.p.close() }

// Send is the package's Send for a prepared offer; it may be called once.
// It closes ch, not o.
func (o *Outgoing) Send(ctx context.Context, ch Channel, progress func(Progress)) error {
	c := newConn(ch)
	unwatch := c.watch(ctx)
	err := o.p.send(c, progress)
	unwatch()
	return c.finish(err)
}

// sendPlan is what Send found under path before offering it: the offer,
// and what to stream.
type sendPlan struct {
	offer   Offer
	file    *os.File  // KindFile: opened while planning
	root    *os.Root  // KindDirectory: the tree being sent
	entries []planned // KindDirectory, in the order they are sent
}

type planned struct {
	path string // slash-separated, relative to root
	dir  bool
	size int64
}

func plan(path string) (*sendPlan, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	p := &sendPlan{offer: Offer{Name: filepath.Base(abs)}}
	if err := checkName(p.offer.Name); err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case info.Mode().IsRegular():
		p.file = f
		p.offer.Kind, p.offer.Size, p.offer.Files = KindFile, info.Size(), 1
		return p, nil
	case info.IsDir():
		f.Close()
		p.offer.Kind = KindDirectory
	default:
		f.Close()
		return nil, fmt.Errorf("transfer: %s is neither a file nor a directory", path)
	}
	if p.root, err = os.OpenRoot(abs); err != nil {
		return nil, err
	}
	err = fs.WalkDir(p.root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case name == ".":
			return nil
		case !d.IsDir() && !d.Type().IsRegular():
			return nil // links and devices stay behind
		}
		if err := checkPath(name); err != nil {
			return err
		}
		e := planned{path: name, dir: d.IsDir()}
		if e.dir {
			p.offer.Dirs++
		} else {
			info, err := d.Info()
			if err != nil {
				return err
			}
			e.size = info.Size()
			p.offer.Size += e.size
			p.offer.Files++
		}
		p.entries = append(p.entries, e)
		return nil
	})
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *sendPlan) close() {
	if p.file != nil {
		p.file.Close()
	}
	if p.root != nil {
		p.root.Close()
	}
}

func (p *sendPlan) send(c *conn, progress func(Progress)) error {
	o := p.offer
	err := c.send(offerMsg{Kind: o.Kind, Size: o.Size, Files: o.Files, Dirs: o.Dirs, DigestAlg: digestAlg, Name: o.Name})
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		return err
	}
	m, _, err := c.await(answerTimeout, "no answer to the offer within %v")
	switch m := m.(type) {
	case acceptMsg:
	case refuseMsg:
		err := &RefusedError{Reason: m.Reason}
		c.end(err)
		return err
	case refuseKindMsg:
		kind := m.Kind
		if kind > lastRefusalKind {
			kind = RefusalUnspecified
		}
		err := &RefusedError{Kind: kind, Reason: m.Reason}
		c.end(err)
		return err
	case nil:
		return err
	default:
		return protocolErrorf("%T in answer to the offer", m)
	}

	s := streamer{c: c, h: sha256.New(), progress: progress, p: Progress{Size: o.Size, Files: o.Files}}
	s.report() // accepted: nothing sent yet
	if p.file != nil {
		err = s.file(p.file, o.Size)
	} else {
		err = s.tree(p.root, p.entries)
	}
	if err == nil {
		err = c.send(doneMsg{Digest: s.h.Sum(nil)})
	}
	if err == nil {
		err = c.closeWrite()
	}
	if err != nil {
		return err
	}
	m, _, err = c.await(c.idle, "no confirmation within %v")
	switch m.(type) {
	case ackMsg:
		return nil
	case nil:
		return err
	default:
		return protocolErrorf("%T in answer to DONE", m)
	}
}

// streamer sends file contents and directory entries, hashing them.
type streamer struct {
	c        *conn
	h        hash.Hash
	frame    []byte // scratch for encoding ENTRY frames
	progress func(Progress)
	p        Progress
}

func (s *streamer) tree(root *os.Root, entries []planned) error {
	for _, e := range entries {
		// The digest covers each ENTRY body, so names and sizes are checked too.
		s.frame = appendFrame(s.frame[:0], entryMsg{Dir: e.dir, Size: e.size, Path: e.path})
		s.h.Write(s.frame[frameHeaderLen:])
		if err := s.c.write(s.frame); err != nil {
			return err
		}
		if !e.dir {
			if err := s.treeFile(root, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *streamer) treeFile(root *os.Root, e planned) error {
	f, err := root.Open(filepath.FromSlash(e.path))
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() || info.Size() != e.size {
		return fmt.Errorf("%w: %s", ErrFileChanged, e.path)
	}
	return s.file(f, e.size)
}

func (s *streamer) file(f *os.File, size int64) error {
	err := s.c.sendData(f, size, s.h, s.chunk)
	if err != nil {
		return err
	}
	s.p.FilesDone++
	s.report()
	return s.poll()
}

func (s *streamer) chunk(n int) error {
	s.p.Done += int64(n)
	s.report()
	return s.poll()
}

func (s *streamer) report() {
	if s.progress != nil {
		s.progress(s.p)
	}
}

// poll notices, between chunks, a cancel from either side; the receiver
// says nothing else before DONE.
func (s *streamer) poll() error {
	m, _, err := s.c.next(false)
	if m != nil {
		return protocolErrorf("%T before DONE", m)
	}
	return err
}
