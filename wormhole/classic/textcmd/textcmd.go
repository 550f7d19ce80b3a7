// Package textcmd is `gander send --text` and `gander receive`: the
// classic CLI's text exchange (package classic) on a wormhole, with what
// the person sees: the code to pass on, the server's message, the text
// received. Both interoperate with `wormhole send --text` and `wormhole
// receive`.
package textcmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gander-pair/gander/internal/sanitize"
	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/classic"
	"github.com/gander-pair/gander/wormhole/codes"
)

// Config is what both commands need.
type Config struct {
	MailboxURL    string
	ClientVersion string
	Logger        *slog.Logger
	// Code is the code to use; empty: Send allocates one of CodeLength
	// words, Receive asks for it.
	Code       string
	CodeLength int
}

func (c Config) wormhole() wormhole.Config {
	return wormhole.Config{
		MailboxURL:    c.MailboxURL,
		AppID:         classic.AppID,
		ClientVersion: c.ClientVersion,
		Logger:        c.Logger,
	}
}

var (
	// ErrNoCode: Receive asked for the code and stdin ended without one.
	ErrNoCode = errors.New("no code given")
	// ErrInterruptedLonely: the exchange was interrupted (its context
	// ended) before the other side came.
	ErrInterruptedLonely = errors.New("interrupted before the other side connected")
)

// Send is `gander send --text`: it opens a wormhole, allocates a code of
// cfg.CodeLength words or uses cfg.Code, tells it on stderr (with the
// server's message of the day), sends text as the classic CLI does and
// closes politely.
func Send(ctx context.Context, cfg Config, text string, stderr io.Writer) error {
	w, err := wormhole.New(ctx, cfg.wormhole())
	if err != nil {
		return err
	}
	showMOTD(w, stderr)
	code := cfg.Code
	if code != "" {
		err = w.SetCode(ctx, code)
	} else {
		code, err = w.AllocateCode(ctx, cfg.CodeLength)
	}
	if err != nil {
		return closeAfter(w, err)
	}
	fmt.Fprintf(stderr, "Wormhole code is: %s\nOn the other computer, please run:\n\n  gander receive %s\n  (or: wormhole receive %s)\n\n", code, code, code)
	if err := classic.SendText(ctx, w, text); err != nil {
		return closeAfter(w, err)
	}
	if err := closeAfter(w, nil); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "text message sent")
	return nil
}

// Receive is `gander receive`: it takes cfg.Code, or asks for one on
// stderr and reads it from stdin (ErrNoCode if none comes), warns of words
// not in the word list, receives the text message and prints it on stdout.
func Receive(ctx context.Context, cfg Config, stdin io.Reader, stdout, stderr io.Writer) error {
	code := cfg.Code
	if code == "" {
		var err error
		if code, err = promptCode(stdin, stderr); err != nil {
			return err
		}
	}
	code, err := codes.Parse(code)
	if err != nil {
		return err
	}
	var unknown *codes.UnknownWordError
	if errors.As(codes.CheckWords(code), &unknown) {
		fmt.Fprintf(stderr, "warning: %s\n", sanitize.Text(unknown.Error(), false))
	}
	w, err := wormhole.New(ctx, cfg.wormhole())
	if err != nil {
		return err
	}
	showMOTD(w, stderr)
	if err := w.SetCode(ctx, code); err != nil {
		return closeAfter(w, err)
	}
	text, err := classic.ReceiveText(ctx, w)
	if err != nil {
		return closeAfter(w, err)
	}
	fmt.Fprintln(stdout, text)
	return closeAfter(w, nil)
}

// promptCode asks for the code on stderr and reads a line of stdin.
func promptCode(stdin io.Reader, stderr io.Writer) (string, error) {
	fmt.Fprint(stderr, "Enter receive wormhole code: ")
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", ErrNoCode
	}
	return strings.TrimSpace(line), nil
}

// closeAfter closes the wormhole politely (bounded, even after Ctrl-C) and
// returns the error that matters most: what stopped the exchange, else
// what the close reported.
func closeAfter(w *wormhole.Wormhole, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closeErr := w.Close(ctx)
	if cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if closeErr != nil && cause != nil && errors.Is(closeErr, wormhole.ErrLonely) {
		return ErrInterruptedLonely
	}
	if closeErr != nil {
		return closeErr
	}
	return cause
}

func showMOTD(w *wormhole.Wormhole, stderr io.Writer) {
	if motd := w.MOTD(); motd != "" {
		fmt.Fprintf(stderr, "Server says: %s\n", sanitize.Text(motd, true))
	}
}
