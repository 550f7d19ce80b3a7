// Command gander pairs two people over a Magic Wormhole: one short code,
// then a secure, durable link between their machines.
//
// This version speaks the classic `wormhole send --text` / `wormhole
// receive` exchange; see README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gander-pair/gander/ui"
	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/classic"
	"github.com/gander-pair/gander/wormhole/codes"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `gander: pair over a Magic Wormhole.

Usage:
  gander send --text MESSAGE [options]   send a text message; prints a code to read out
  gander receive [CODE] [options]        receive it (asks for the code if not given)
  gander --version | --help

Both commands interoperate with the classic "wormhole send --text" and
"wormhole receive".

Options:
  --mailbox URL       mailbox server (default %s)
  --code CODE         send: use this code instead of allocating one
  --code-length N     send: words in an allocated code (default %d)
  --log FILE          write a debug log to FILE
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses: 0 success, 1 the exchange failed, 2 bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, wormhole.DefaultMailboxURL, codes.DefaultLength)
		return 2
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "gander", version)
		return 0
	case "--help", "-help", "-h", "help":
		fmt.Fprintf(stdout, usage, wormhole.DefaultMailboxURL, codes.DefaultLength)
		return 0
	case "send", "receive":
	default:
		fmt.Fprintf(stderr, "gander: unknown command %q\n\n", args[0])
		fmt.Fprintf(stderr, usage, wormhole.DefaultMailboxURL, codes.DefaultLength)
		return 2
	}

	fs := flag.NewFlagSet("gander "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, usage, wormhole.DefaultMailboxURL, codes.DefaultLength) }
	mailboxURL := fs.String("mailbox", wormhole.DefaultMailboxURL, "")
	logFile := fs.String("log", "", "")
	text := fs.String("text", "", "")
	fixedCode := fs.String("code", "", "")
	codeLength := fs.Int("code-length", codes.DefaultLength, "")
	if err := fs.Parse(reorderFlags(fs, args[1:])); err != nil {
		return 2
	}

	logger, closeLog, err := openLog(*logFile)
	if err != nil {
		fmt.Fprintln(stderr, "gander:", err)
		return 1
	}
	defer closeLog()
	cfg := wormhole.Config{
		MailboxURL:    *mailboxURL,
		AppID:         classic.AppID,
		ClientVersion: version,
		Logger:        logger,
	}

	switch args[0] {
	case "send":
		if fs.NArg() > 0 || !isFlagSet(fs, "text") {
			fmt.Fprintln(stderr, "gander send: give the message with --text MESSAGE (files are not supported yet)")
			return 2
		}
		if *codeLength < 1 {
			fmt.Fprintln(stderr, "gander send: --code-length must be at least 1")
			return 2
		}
		err = sendText(ctx, cfg, *text, *fixedCode, *codeLength, stderr)
	case "receive":
		if fs.NArg() > 1 {
			fmt.Fprintln(stderr, "gander receive: expected at most one code")
			return 2
		}
		code := fs.Arg(0)
		if code == "" {
			if code, err = promptCode(stdin, stderr); err != nil {
				fmt.Fprintln(stderr, "gander receive:", err)
				return 2
			}
		}
		err = receiveText(ctx, cfg, code, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gander %s: %s\n", args[0], describe(err))
		return 1
	}
	return 0
}

// reorderFlags lets options follow positional arguments, as in
// "gander receive 7-guitarist-revenge --mailbox ws://...".
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && fs.Lookup(name) != nil && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), positional...)
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func openLog(path string) (*slog.Logger, func(), error) {
	if path == "" {
		return slog.New(slog.DiscardHandler), func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log: %w", err)
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})), func() { f.Close() }, nil
}

func promptCode(stdin io.Reader, stderr io.Writer) (string, error) {
	fmt.Fprint(stderr, "Enter receive wormhole code: ")
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no code given")
	}
	return strings.TrimSpace(line), nil
}

func sendText(ctx context.Context, cfg wormhole.Config, text, code string, length int, stderr io.Writer) error {
	w, err := wormhole.New(ctx, cfg)
	if err != nil {
		return err
	}
	showMOTD(w, stderr)
	if code != "" {
		err = w.SetCode(ctx, code)
	} else {
		code, err = w.AllocateCode(ctx, length)
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

func receiveText(ctx context.Context, cfg wormhole.Config, code string, stdout, stderr io.Writer) error {
	code, err := codes.Parse(code)
	if err != nil {
		return err
	}
	var unknown *codes.UnknownWordError
	if errors.As(codes.CheckWords(code), &unknown) {
		fmt.Fprintf(stderr, "warning: %s\n", ui.Sanitize(unknown.Error(), false))
	}
	w, err := wormhole.New(ctx, cfg)
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
		return errors.New("interrupted before the other side connected")
	}
	if closeErr != nil {
		return closeErr
	}
	return cause
}

func showMOTD(w *wormhole.Wormhole, stderr io.Writer) {
	if motd := w.MOTD(); motd != "" {
		fmt.Fprintf(stderr, "Server says: %s\n", ui.Sanitize(motd, true))
	}
}

// describe turns an error into one line for a person.
func describe(err error) string {
	switch {
	case errors.Is(err, wormhole.ErrWrongCode):
		return "wrong code: the other side typed a different code. Check it and try again."
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return ui.Sanitize(err.Error(), false)
}
