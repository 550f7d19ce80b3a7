package classic

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gander-pair/gander/internal/sanitize"
	"github.com/gander-pair/gander/internal/zipsafe"
	"github.com/gander-pair/gander/wormhole/codes"
)

var (
	// ErrNoCode: Receive asked for the code and stdin ended without one.
	ErrNoCode = errors.New("no code given")
	// ErrRejected: the person (or a check: the name exists, no room)
	// refused the offer; the sender was told why.
	ErrRejected = errors.New("transfer rejected")
	// ErrNoTransit: a file offer came without the sender's hints.
	ErrNoTransit = errors.New("the sender offered a file without saying how to connect (no transit message)")
)

// Receive is `gander receive`: it takes cfg.Code or asks for it, then
// receives a text message (printed on stdout), a file or a directory.
func Receive(ctx context.Context, cfg Config, stdin io.Reader, stdout, stderr io.Writer) error {
	in := bufio.NewReader(stdin)
	code := cfg.Code
	if code == "" {
		fmt.Fprint(stderr, "Enter receive wormhole code: ")
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return ErrNoCode
		}
		code = strings.TrimSpace(line)
	}
	code, err := codes.Parse(code)
	if err != nil {
		return err
	}
	var unknown *codes.UnknownWordError
	if errors.As(codes.CheckWords(code), &unknown) {
		fmt.Fprintf(stderr, "warning: %s\n", sanitize.Line(unknown.Error()))
	}
	w, err := newWormhole(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if err := w.SetCode(ctx, code); err != nil {
		return closeAfter(w, err)
	}
	return closeAfter(w, receiveOn(ctx, cfg, w, in, stdout, stderr))
}

func receiveOn(ctx context.Context, cfg Config, m Mailbox, in *bufio.Reader, stdout, stderr io.Writer) error {
	verifier, err := m.Verifier(ctx)
	if err != nil {
		return err
	}
	if cfg.Verify {
		fmt.Fprintf(stderr, "Verifier %s.\n", hex.EncodeToString(verifier))
	}
	var conn *connector
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	for {
		data, err := m.Receive(ctx)
		if err != nil {
			return err
		}
		msg, err := decodeMessage(data)
		if err != nil {
			return err
		}
		if msg.Transit != nil && conn == nil {
			transitKey, err := m.DeriveKey(transitKeyPurpose, 32)
			if err != nil {
				return err
			}
			if conn, err = startConnector(cfg, deriveKeys(transitKey, false)); err != nil {
				return err
			}
			// Dialled once the offer is accepted, as the reference does:
			// nothing connects to a sender nobody has said yes to.
			conn.peerHints = msg.Transit.Hints
			if err := m.Send(ctx, transitJSON(conn.hints)); err != nil {
				return err
			}
		}
		if msg.Offer == nil {
			continue
		}
		r := receiver{cfg: cfg, m: m, conn: conn, in: in, stderr: stderr}
		switch o := msg.Offer; {
		case o.Message != nil:
			fmt.Fprintln(stdout, *o.Message)
			return m.Send(ctx, answerJSON(answerMessage{MessageAck: "ok"}))
		case o.File != nil:
			return r.refuseOnError(ctx, r.file(ctx, o.File))
		case o.Directory != nil:
			return r.refuseOnError(ctx, r.directory(ctx, o.Directory))
		default:
			m.Send(ctx, errorJSON(errUnknownOffer.Error()))
			return errUnknownOffer
		}
	}
}

type receiver struct {
	cfg      Config
	m        Mailbox
	conn     *connector
	in       *bufio.Reader
	stderr   io.Writer
	answered bool
}

// refusal is an error the sender is told, in its words.
type refusal struct {
	tell string // what the sender reads
	err  error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(err error, tell string) error { return &refusal{tell: tell, err: err} }

// refuseOnError tells the sender why an offer fails before the answer.
func (r *receiver) refuseOnError(ctx context.Context, err error) error {
	if err == nil || r.answered {
		return err
	}
	tell := rejectedMessage
	var ref *refusal
	var bad *BadOfferError
	switch {
	case errors.As(err, &ref):
		tell = ref.tell
	case errors.As(err, &bad):
		tell = bad.Error()
	}
	r.m.Send(ctx, errorJSON(tell))
	return err
}

// destination is where an offered name goes: never onto something that
// exists.
func (r *receiver) destination(offered string) (string, error) {
	name, err := safeName(offered)
	if err != nil {
		return "", err
	}
	base := r.cfg.Dir
	if base == "" {
		base = "."
	}
	dest := filepath.Join(base, name)
	if r.cfg.OutputFile != "" {
		dest = r.cfg.OutputFile
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(base, dest)
		}
		if st, err := os.Stat(dest); err == nil && st.IsDir() {
			dest = filepath.Join(dest, name)
		}
	}
	dest, err = filepath.Abs(dest)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(dest); err == nil {
		fmt.Fprintf(r.stderr, "Error: refusing to overwrite existing %s\n", quoted(dest))
		return "", refuse(fmt.Errorf("%s exists: refusing to overwrite it", quoted(dest)), rejectedMessage)
	}
	return dest, nil
}

// checkRoom refuses an offer the disk cannot hold.
func (r *receiver) checkRoom(dir string, need int64) error {
	free := r.cfg.FreeSpace
	if free == nil {
		free = StatfsFreeSpace
	}
	have, err := free(dir)
	if err != nil {
		return fmt.Errorf("cannot tell the free space in %s: %w", quoted(dir), err)
	}
	if have < need {
		fmt.Fprintf(r.stderr, "Error: insufficient free space (%s) for %s\n", size(have), size(need))
		return refuse(fmt.Errorf("not enough free space in %s: %s needed, %s free", quoted(dir), size(need), size(have)),
			fmt.Sprintf("%s: the receiver lacks disk space (%s needed, %s free)", rejectedMessage, size(need), size(have)))
	}
	return nil
}

// ask is the reference's question: an empty answer or one starting with
// "y" accepts; anything else, or the end of stdin, refuses.
func (r *receiver) ask() error {
	if r.cfg.AcceptFile {
		return nil
	}
	fmt.Fprint(r.stderr, "ok? (Y/n): ")
	line, err := r.in.ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	if (err == nil && answer == "") || strings.HasPrefix(answer, "y") {
		return nil
	}
	fmt.Fprintln(r.stderr, "transfer rejected")
	return ErrRejected
}

func (r *receiver) accept(ctx context.Context) (*recordConn, error) {
	if r.conn == nil {
		return nil, ErrNoTransit
	}
	if err := r.m.Send(ctx, answerJSON(answerMessage{FileAck: "ok"})); err != nil {
		return nil, err
	}
	r.answered = true
	r.conn.addHints(r.conn.peerHints)
	rc, err := r.conn.await(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.stderr, "Receiving (%s)..\n", rc.via)
	return rc, nil
}

func (r *receiver) file(ctx context.Context, o *fileOffer) error {
	if err := o.check(); err != nil {
		return err
	}
	dest, err := r.destination(o.Filename)
	if err != nil {
		return err
	}
	dir := filepath.Dir(dest)
	if err := r.checkRoom(dir, o.Filesize); err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "Receiving file (%s) into: %s\n", size(o.Filesize), quoted(filepath.Base(dest)))
	if err := r.ask(); err != nil {
		return err
	}
	err = r.receiveTo(ctx, dir, ".gander-receiving-*", o.Filesize, func(tmp string) error {
		// A link, not a rename: it fails if dest appeared meanwhile, so
		// that nothing is ever overwritten.
		if err := os.Link(tmp, dest); err != nil {
			return &keepError{tell: "the receiver could not write the file", err: fmt.Errorf("cannot write %s: %w", quoted(dest), err)}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "Received file written to: %s\n", sanitize.Line(dest))
	return nil
}

func (r *receiver) directory(ctx context.Context, o *directoryOffer) error {
	if err := o.check(); err != nil {
		return err
	}
	dest, err := r.destination(o.Dirname)
	if err != nil {
		return err
	}
	parent := filepath.Dir(dest)
	// The zip waits beside the target while it arrives, then unpacks.
	if err := r.checkRoom(parent, o.Zipsize+o.Numbytes); err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "Receiving directory (%s) into: %s/\n", size(o.Zipsize), quoted(filepath.Base(dest)))
	fmt.Fprintf(r.stderr, "%d files, %s (uncompressed)\n", o.Numfiles, size(o.Numbytes))
	if err := r.ask(); err != nil {
		return err
	}
	err = r.receiveTo(ctx, parent, ".gander-receiving-*.zip", o.Zipsize, func(tmp string) error {
		fmt.Fprintln(r.stderr, "Unpacking zipfile..")
		if _, err := zipsafe.Extract(tmp, dest, extractLimits(o)); err != nil {
			return &keepError{tell: "the receiver could not unpack the directory", err: fmt.Errorf("unpacking %s: %w", quoted(o.Dirname), err)}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "Received files written to: %s\n", sanitize.Line(dest))
	return nil
}

// keepError is what went wrong putting a complete transfer in its place;
// the sender's ack says tell and why.
type keepError struct {
	tell string
	err  error
}

func (e *keepError) Error() string { return e.err.Error() }
func (e *keepError) Unwrap() error { return e.err }

// receiveTo accepts the offer, streams its size bytes into a temporary
// file in dir, and hands the complete file's path to keep (which links or
// unpacks it); the ack tells the sender whether keep succeeded. The
// temporary file never outlives the call.
func (r *receiver) receiveTo(ctx context.Context, dir, pattern string, size int64, keep func(tmp string) error) error {
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	rc, err := r.accept(ctx)
	if err != nil {
		return err
	}
	defer rc.conn.Close()
	defer watch(ctx, rc)()
	disk := newDiskWriter(tmp)
	defer disk.finish()
	sum, err := receiveData(rc, disk, size, newProgress(r.stderr, size, r.cfg.HideProgress))
	if err == nil {
		err = disk.finish()
	}
	if err != nil {
		return ctxErr(ctx, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := keep(tmp.Name()); err != nil {
		var ke *keepError
		if errors.As(err, &ke) {
			sendAck(rc, ke.tell+": "+ke.err.Error(), nil)
		}
		return err
	}
	return sendAck(rc, "ok", sum)
}

// receiveData writes exactly size bytes of records to f and returns their
// sha256; a record past size is refused.
func receiveData(rc *recordConn, f io.Writer, size int64, prog *progress) ([]byte, error) {
	defer prog.finish()
	h := sha256.New()
	in := startReceivePipeline(rc, size)
	complete := false
	defer func() {
		if !complete {
			rc.conn.Close() // unblocks the reader, stopped early
		}
		in.close()
	}()
	var got int64
	for {
		rec, err := in.next()
		if err == io.EOF {
			complete = true
			return h.Sum(nil), nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w (%d of %d bytes)", ErrTruncated, got, size)
			}
			return nil, err
		}
		if _, err := f.Write(rec); err != nil {
			return nil, err
		}
		h.Write(rec)
		got += int64(len(rec))
		prog.add(len(rec))
		in.release(rec)
	}
}

// sendAck sends the last record and, once it is "ok", waits (up to
// AckLinger) for the sender to hang up: leaving at once would close the
// mailbox under a sender that has not read the ack yet, and
// wormhole-william then abandons the connection with the ack unread.
func sendAck(rc *recordConn, ack string, sum []byte) error {
	rc.setDeadline(IdleTimeout)
	a := ackRecord{Ack: ack}
	if sum != nil {
		a.SHA256 = hex.EncodeToString(sum)
	}
	if err := rc.writeRecord(encode(a)); err != nil {
		return err
	}
	if ack == "ok" {
		rc.setDeadline(AckLinger)
		io.Copy(io.Discard, io.LimitReader(rc.r, MaxAckSize)) // until EOF, the deadline or the limit
	}
	return nil
}
