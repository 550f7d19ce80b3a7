package classic

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// what is the thing being sent: a file, or a directory as a zip.
type what struct {
	name    string
	size    int64 // the file's, or the zip's
	offer   offerMessage
	summary string
	// write streams the content (the file, or the directory's zip).
	write func(io.Writer) error
}

func prepare(path string) (what, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return what{}, err
	}
	// The name sent is what the person typed, even through a symlink (as
	// the reference does); the content is what it points to.
	name := filepath.Base(filepath.Clean(abs))
	st, err := os.Stat(abs)
	if err != nil {
		return what{}, fmt.Errorf("cannot send: %w", err)
	}
	w := what{name: name}
	switch {
	case st.Mode().IsRegular():
		w.size = st.Size()
		w.offer.File = &fileOffer{Filename: name, Filesize: w.size}
		w.summary = fmt.Sprintf("Sending %s file named %s", size(w.size), quoted(name))
		w.write = func(out io.Writer) error {
			f, err := os.Open(abs)
			if err != nil {
				return err
			}
			defer f.Close()
			// Into the pipeline's own buffers (sendPipeline.ReadFrom).
			_, err = io.Copy(out, io.LimitReader(f, w.size))
			return err
		}
	case st.IsDir():
		zs, stats, err := zipSize(abs)
		if err != nil {
			return what{}, fmt.Errorf("cannot send %s: %w", quoted(name), err)
		}
		w.size = zs
		w.offer.Directory = &directoryOffer{Mode: "zipfile/deflated", Dirname: name, Zipsize: zs, Numbytes: stats.Bytes, Numfiles: stats.Files}
		w.summary = fmt.Sprintf("Sending directory (%s compressed) named %s", size(zs), quoted(name))
		w.write = func(out io.Writer) error {
			_, err := zipDir(out, abs)
			return err
		}
	default:
		return what{}, fmt.Errorf("cannot send %s: neither a file nor a directory", quoted(name))
	}
	return w, nil
}

// Send is `gander send PATH`: it offers the file or directory at path,
// tells the code on stderr and sends once the receiver accepts.
func Send(ctx context.Context, cfg Config, path string, stdin io.Reader, stderr io.Writer) error {
	item, err := prepare(path)
	if err != nil {
		return err
	}
	w, err := newWormhole(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	code := cfg.Code
	if code != "" {
		err = w.SetCode(ctx, code)
	} else {
		code, err = w.AllocateCode(ctx, cfg.CodeLength)
	}
	if err != nil {
		return closeAfter(w, err)
	}
	fmt.Fprintln(stderr, item.summary)
	verify := ""
	if cfg.Verify {
		verify = "--verify "
	}
	fmt.Fprintf(stderr, "Wormhole code is: %s\nOn the other computer, please run:\n\n  gander receive %s%s\n  (or: wormhole receive %s%s)\n\n", code, verify, code, verify, code)
	return closeAfter(w, sendOn(ctx, cfg, w, item, bufio.NewReader(stdin), stderr))
}

func sendOn(ctx context.Context, cfg Config, m Mailbox, item what, stdin *bufio.Reader, stderr io.Writer) error {
	verifier, err := m.Verifier(ctx)
	if err != nil {
		return err
	}
	if cfg.Verify {
		if err := confirmVerifier(ctx, m, verifier, stdin, stderr); err != nil {
			return err
		}
	}
	transitKey, err := m.DeriveKey(transitKeyPurpose, 32)
	if err != nil {
		return err
	}
	conn, err := startConnector(cfg, deriveKeys(transitKey, true))
	if err != nil {
		return err
	}
	defer conn.close()
	if err := m.Send(ctx, transitJSON(conn.hints)); err != nil {
		return err
	}
	if err := m.Send(ctx, encode(map[string]offerMessage{"offer": item.offer})); err != nil {
		return err
	}
	for accepted := false; !accepted; {
		data, err := m.Receive(ctx)
		if err != nil {
			return err
		}
		msg, err := decodeMessage(data)
		if err != nil {
			var remote *RemoteError
			if errors.As(err, &remote) {
				return fmt.Errorf("the receiver refused: %s", sanitizeText(remote.Message, false))
			}
			return err
		}
		if msg.Transit != nil {
			conn.addHints(msg.Transit.Hints)
		}
		if msg.Answer != nil {
			if msg.Answer.FileAck != "ok" {
				return fmt.Errorf("unexpected answer from the receiver (file_ack %q)", sanitizeText(msg.Answer.FileAck, false))
			}
			accepted = true
		}
	}
	rc, err := conn.await(ctx)
	if err != nil {
		return err
	}
	defer rc.conn.Close()
	defer watch(ctx, rc)()
	fmt.Fprintf(stderr, "Sending (%s)..\n", rc.via)
	sum, err := sendData(rc, item, newProgress(stderr, item.size, cfg.HideProgress))
	if err != nil {
		return ctxErr(ctx, err)
	}
	fmt.Fprintln(stderr, "File sent.. waiting for confirmation")
	if err := awaitAck(rc, sum); err != nil {
		return ctxErr(ctx, err)
	}
	fmt.Fprintln(stderr, "Confirmation received. Transfer complete.")
	return nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// sendData streams the file, or zips the directory, into records, and
// returns the sha256 of what it sent.
func sendData(rc *recordConn, item what, prog *progress) ([]byte, error) {
	defer prog.finish()
	out := startSendPipeline(rc, prog)
	err := item.write(out)
	if ferr := out.finish(); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	if out.n != item.size {
		return nil, fmt.Errorf("%s changed while being sent (%d bytes sent, %d offered)", quoted(item.name), out.n, item.size)
	}
	return out.h.Sum(nil), nil
}

// awaitAck reads the receiver's ack and compares its sha256 with ours.
func awaitAck(rc *recordConn, sum []byte) error {
	rc.setDeadline(AckTimeout)
	rec, err := rc.readRecord()
	if err != nil {
		return fmt.Errorf("no confirmation from the receiver: %w", err)
	}
	if len(rec) > MaxAckSize {
		return errors.New("the receiver's confirmation is too large")
	}
	var ack ackRecord
	if err := json.Unmarshal(rec, &ack); err != nil {
		return fmt.Errorf("malformed confirmation from the receiver: %w", err)
	}
	if ack.Ack != "ok" {
		return fmt.Errorf("transfer failed (the receiver says: %s)", sanitizeText(ack.Ack, false))
	}
	if ack.SHA256 != "" && !strings.EqualFold(ack.SHA256, hex.EncodeToString(sum)) {
		return ErrBadHash
	}
	return nil
}

// confirmVerifier shows the verifier and asks, as the reference does.
func confirmVerifier(ctx context.Context, m Mailbox, verifier []byte, stdin *bufio.Reader, stderr io.Writer) error {
	for {
		fmt.Fprintf(stderr, "Verifier %s. ok? (yes/no): ", hex.EncodeToString(verifier))
		line, err := stdin.ReadString('\n')
		answer := strings.ToLower(strings.TrimSpace(line))
		if answer == "yes" {
			return nil
		}
		if answer == "no" || err != nil {
			const why = "sender rejected verification check, abandoned transfer"
			m.Send(ctx, errorJSON(why))
			return errors.New(why)
		}
	}
}

func (c *recordConn) setDeadline(d time.Duration) {
	if dl, ok := c.conn.(interface{ SetDeadline(time.Time) error }); ok {
		dl.SetDeadline(time.Now().Add(d))
	}
}
