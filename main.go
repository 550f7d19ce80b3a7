// Command gander pairs two people over a Magic Wormhole: one short code,
// then a secure, durable link between their machines.
//
// `gander [CODE] --local/--remote ...` forwards ports with the peer over a
// dilated wormhole, compatible with fowl; `gander send`/`receive` speak
// the classic `wormhole send --text` exchange. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gander-pair/gander/classic"
	"github.com/gander-pair/gander/frontend/fowld"
	"github.com/gander-pair/gander/frontend/plain"
	"github.com/gander-pair/gander/frontend/tui"
	"github.com/gander-pair/gander/internal/logcap"
	"github.com/gander-pair/gander/internal/sanitize"
	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/transit"
	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/classic/textcmd"
	"github.com/gander-pair/gander/wormhole/codes"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `gander: pair over a Magic Wormhole.

Usage:
  gander [CODE] [options]                        the full-screen app: share a
                                                 code, then forward ports
  gander [CODE] --no-tui --local SPEC ...        the same, one line per event
  gander --json [options]                        the same, driven like fowld
  gander send PATH [options]                     send a file or directory to
                                                 any wormhole client
  gander send --text MESSAGE|- [options]         send a text message (-: stdin)
  gander receive [CODE] [options]                receive either
  gander share [--read-only] [--command CMD]     share this terminal; prints a
                                                 code for "shwim CODE"
  gander join CODE                               join a shared terminal (shwim's)
  gander --version | --help

Without CODE the app lets you type one (Tab completes) or allocate one.

Forwarding (compatible with fowl):
  --local NAME[:PORT][:bind=ADDR][:remote-connect=PORT]
        let the peer make us listen for its service NAME (on 127.0.0.1
        unless bind= says otherwise; a random port unless PORT is given)
  --remote NAME[:PORT][:listen=PORT][:address=ADDR]
        our service NAME runs at ADDR:PORT (127.0.0.1, a free port if not
        given); ask the peer to listen for it
  --allow-listen PATTERN
        let the peer make us listen (on 127.0.0.1) for any service whose
        name matches PATTERN ("dev-*", "*") without asking
  Other requests of the peer are asked about in the app, and refused
  with --no-tui and --json.
  --relay tcp:HOST:PORT   transit relay (default %s)
  --no-direct             relay only: no direct connections
  --no-tui                plain line output, for scripts and dumb terminals
                          (the default when stdout is not a terminal)

Files (between gander peers; in the app, drop files onto the terminal):
  --send PATH             send this file or directory once the peer is here
                          (a gander peer only: for "wormhole receive" and
                          other wormhole clients use "gander send PATH")
  --accept-files          accept the peer's files unasked (else --no-tui
                          refuses them and --json asks its controller)
  --save-dir DIR          where received files go (default ~/Downloads, or
                          the current directory)
  --max-file-size SIZE    refuse an offer larger than SIZE (default 10G;
                          0: no limit). SIZE is bytes or 500M, 2G, 1T
  --max-session-bytes SIZE
                          refuse offers once SIZE in all is accepted in
                          this session (default 50G; 0: no limit)
  An offer is also refused when the save directory's disk lacks room
  for it plus 5%% of the disk (at most 1 GiB), and a transfer that sends
  nothing for a minute is stopped. At most 4 offers are received at once
  and 16 wait; more are refused.

  --json                  speak fowld's JSON-lines protocol: commands on
                          stdin (allocate-code, set-code, local, remote,
                          session-close), events on stdout

send and receive interoperate with "wormhole send"/"wormhole receive"
(magic-wormhole, wormhole-william, wormhole-rs):
  --relay-url URL       mailbox server (also --mailbox; WORMHOLE_RELAY_URL)
  --transit-helper tcp:HOST:PORT
                        transit relay ("" for none; default
                        %[4]s)
  --no-listen           make no direct connections of our own (relay, or
                        the peer's direct hints, only)
  --hide-progress       no progress bar on stderr
  --verify              show the verifier (send: and ask to confirm it)
  --accept-file         receive: accept a file or directory without asking
  -o, --output-file PATH
                        receive: write here (an existing directory: into it)
  A received file never overwrites anything: it is written under a
  temporary name and renamed only once complete; an offer larger than the
  free disk space is refused, and the sender told why.

Options:
  --mailbox URL       mailbox server (default %[2]s)
  --code CODE         send: use this code instead of allocating one
  --code-length N     words in an allocated code (default %[3]d)
  --log FILE          write a debug log to FILE (the app logs to
                      $XDG_STATE_HOME/gander/gander.log by default)

NO_COLOR=1 turns colours off.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses: 0 success, 1 the exchange failed, 2 bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch first(args) {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "gander", version)
		return 0
	case "--help", "-help", "-h", "help":
		printUsage(stdout)
		return 0
	case "send", "receive":
		t, ok := parseText(args[0], args[1:], stderr)
		if !ok {
			return 2
		}
		return runText(ctx, t, stdin, stdout, stderr)
	case "share", "join":
		c, ok := parseShare(args[0], args[1:], stderr)
		if !ok {
			return 2
		}
		return runShare(ctx, c, stdin, stdout, stderr)
	}
	p, ok := parsePairing(args, stdout, stderr)
	if !ok {
		return 2
	}
	return runPairing(ctx, p, stdin, stdout, stderr)
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, usage, session.DefaultTransitRelay, wormhole.DefaultMailboxURL, codes.DefaultLength, transit.DefaultRelay)
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// textCommand is `gander send` (--text MESSAGE, or a PATH) or `gander
// receive`, from the command line.
type textCommand struct {
	name    string // "send" or "receive"
	cfg     textcmd.Config
	text    string // what send --text sends
	isText  bool   // send --text (else send a path)
	path    string // what send sends otherwise
	files   classic.Config
	logFile string
}

// parseText reads a send or receive command's flags; false means bad usage
// (said on stderr). The flags are the wormhole clients': --relay-url (or
// WORMHOLE_RELAY_URL) for the mailbox, --transit-helper for the relay.
func parseText(name string, args []string, stderr io.Writer) (textCommand, bool) {
	fs := flag.NewFlagSet("gander "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr) }
	defaultMailbox := wormhole.DefaultMailboxURL
	if env := os.Getenv("WORMHOLE_RELAY_URL"); env != "" {
		defaultMailbox = env
	}
	mailboxURL := fs.String("mailbox", defaultMailbox, "")
	fs.StringVar(mailboxURL, "relay-url", defaultMailbox, "")
	transitHelper := fs.String("transit-helper", transit.DefaultRelay, "")
	noListen := fs.Bool("no-listen", false, "")
	hideProgress := fs.Bool("hide-progress", false, "")
	verify := fs.Bool("verify", false, "")
	logFile := fs.String("log", "", "")
	text := fs.String("text", "", "")
	fixedCode := fs.String("code", "", "")
	codeLength := fs.Int("code-length", codes.DefaultLength, "")
	var acceptFile *bool
	var outputFile *string
	if name == "receive" {
		acceptFile = fs.Bool("accept-file", false, "")
		outputFile = fs.String("output-file", "", "")
		fs.StringVar(outputFile, "o", "", "")
	}
	if err := fs.Parse(reorderFlags(fs, args)); err != nil {
		return textCommand{}, false
	}
	t := textCommand{
		name: name, text: *text, isText: isFlagSet(fs, "text"), logFile: *logFile,
		cfg: textcmd.Config{MailboxURL: *mailboxURL, ClientVersion: version, Code: *fixedCode, CodeLength: *codeLength},
		files: classic.Config{
			MailboxURL: *mailboxURL, ClientVersion: version, Code: *fixedCode, CodeLength: *codeLength,
			TransitRelay: *transitHelper, NoListen: *noListen, HideProgress: *hideProgress, Verify: *verify,
		},
	}
	if *transitHelper != "" {
		if _, err := transit.ParseRelayLocation(*transitHelper); err != nil {
			fmt.Fprintf(stderr, "gander %s: --transit-helper: %v\n", name, err)
			return textCommand{}, false
		}
	}
	switch name {
	case "send":
		switch {
		case t.isText && fs.NArg() > 0:
			fmt.Fprintln(stderr, "gander send: give either --text MESSAGE or a file or directory, not both")
			return textCommand{}, false
		case !t.isText && fs.NArg() == 0:
			fmt.Fprintln(stderr, "gander send: give a file or directory to send, or --text MESSAGE (- reads it from stdin)")
			return textCommand{}, false
		case fs.NArg() > 1:
			fmt.Fprintln(stderr, "gander send: one file or directory per code (send a directory to send several)")
			return textCommand{}, false
		}
		t.path = fs.Arg(0)
		if *codeLength < 1 {
			fmt.Fprintln(stderr, "gander send: --code-length must be at least 1")
			return textCommand{}, false
		}
	case "receive":
		if fs.NArg() > 1 {
			fmt.Fprintln(stderr, "gander receive: expected at most one code")
			return textCommand{}, false
		}
		t.cfg.Code = fs.Arg(0) // empty: asked for
		t.files.Code = fs.Arg(0)
		t.files.AcceptFile, t.files.OutputFile = *acceptFile, *outputFile
	}
	return t, true
}

func runText(ctx context.Context, t textCommand, stdin io.Reader, stdout, stderr io.Writer) int {
	logger, closeLog, err := openLog(t.logFile)
	if err != nil {
		fmt.Fprintln(stderr, "gander:", err)
		return 1
	}
	defer closeLog()
	t.cfg.Logger, t.files.Logger = logger, logger
	switch {
	case t.name == "send" && t.isText:
		text := t.text
		if text == "-" {
			if text, err = readMessage(stdin, stderr); err != nil {
				break
			}
		}
		err = textcmd.Send(ctx, t.cfg, text, stderr)
	case t.name == "send":
		err = classic.Send(ctx, t.files, t.path, stdin, stderr)
	default:
		err = classic.Receive(ctx, t.files, stdin, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gander %s: %s\n", t.name, describe(err))
		if errors.Is(err, textcmd.ErrNoCode) || errors.Is(err, classic.ErrNoCode) {
			return 2 // as bad usage: no code was given
		}
		return 1
	}
	return 0
}

// readMessage is `--text -`: the message is stdin, up to what the mailbox
// carries.
func readMessage(stdin io.Reader, stderr io.Writer) (string, error) {
	fmt.Fprintln(stderr, "Reading text message from stdin..")
	// The offer's JSON adds quotes and escapes: leave it room.
	limit := int64(wormhole.MaxMessageSize - 1024)
	b, err := io.ReadAll(io.LimitReader(stdin, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("the message on stdin is larger than %d bytes, more than the mailbox carries; send it as a file", limit)
	}
	return string(b), nil
}

// frontend is what shows a pairing session and drives it.
type frontend int

const (
	frontendTUI   frontend = iota // the full-screen app
	frontendLines                 // plain lines (--no-tui, or no terminal)
	frontendFowld                 // fowld's JSON lines (--json)
)

// pairing is a forwarding session, from the command line.
type pairing struct {
	cfg      session.Config
	frontend frontend
	sends    []string // files to send once the peer is here
	logFile  string
}

// parsePairing reads the flags of the pairing modes (forwards given here
// are the session's first commands); false means bad usage (said on
// stderr).
func parsePairing(args []string, stdout, stderr io.Writer) (pairing, bool) {
	fs := flag.NewFlagSet("gander", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr) }
	var locals, remotes, allowListen repeated
	fs.Var(&locals, "local", "")
	fs.Var(&remotes, "remote", "")
	fs.Var(&allowListen, "allow-listen", "")
	noTUI := fs.Bool("no-tui", false, "")
	var sends repeated
	fs.Var(&sends, "send", "")
	saveDir := fs.String("save-dir", "", "")
	acceptFiles := fs.Bool("accept-files", false, "")
	maxFileSize := fs.String("max-file-size", "", "")
	maxSessionBytes := fs.String("max-session-bytes", "", "")
	mailboxURL := fs.String("mailbox", wormhole.DefaultMailboxURL, "")
	relay := fs.String("relay", session.DefaultTransitRelay, "")
	noDirect := fs.Bool("no-direct", false, "")
	codeLength := fs.Int("code-length", codes.DefaultLength, "")
	logFile := fs.String("log", "", "")
	jsonMode := fs.Bool("json", false, "")
	if err := fs.Parse(reorderFlags(fs, args)); err != nil {
		return pairing{}, false
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "gander: unknown command %q\n\n", fs.Arg(0))
		printUsage(stderr)
		return pairing{}, false
	}
	p := pairing{sends: sends, logFile: *logFile}
	cfg := session.Config{
		MailboxURL: *mailboxURL, TransitRelay: *relay, NoDirect: *noDirect,
		Code: fs.Arg(0), CodeLength: *codeLength, ClientVersion: version,
		AllowListen: allowListen, SaveDir: *saveDir, AcceptFiles: *acceptFiles,
	}
	if cfg.SaveDir == "" {
		cfg.SaveDir = defaultSaveDir()
	}
	for _, f := range []struct {
		flag, value string
		limit       *int64
	}{
		{"--max-file-size", *maxFileSize, &cfg.FileLimits.MaxFileSize},
		{"--max-session-bytes", *maxSessionBytes, &cfg.FileLimits.MaxSessionBytes},
	} {
		if f.value == "" {
			continue
		}
		n, err := parseSize(f.value)
		if err != nil {
			fmt.Fprintf(stderr, "gander: %s: %v\n", f.flag, err)
			return pairing{}, false
		}
		*f.limit = n
		if n == 0 {
			*f.limit = -1 // the user said: no limit
		}
	}
	if len(sends) > 0 && *jsonMode {
		fmt.Fprintln(stderr, `gander: --send is for --no-tui; with --json, use {"kind": "send-file", ...}`)
		return pairing{}, false
	}
	for _, name := range sends {
		if _, err := os.Stat(name); err != nil {
			fmt.Fprintln(stderr, "gander:", err)
			return pairing{}, false
		}
	}
	if *codeLength < 1 {
		fmt.Fprintln(stderr, "gander: --code-length must be at least 1")
		return pairing{}, false
	}
	// Without a terminal (a script, a pipe, TERM=dumb) the plain lines
	// are what is wanted, as if --no-tui were given.
	switch {
	case *jsonMode:
		p.frontend = frontendFowld
	case !*noTUI && isTerminal(stdout) && os.Getenv("TERM") != "dumb":
		p.frontend = frontendTUI
	default:
		p.frontend = frontendLines
	}
	if p.frontend == frontendLines && len(locals) == 0 && len(remotes) == 0 && len(allowListen) == 0 && len(sends) == 0 && !*acceptFiles {
		fmt.Fprintln(stderr, "gander: nothing to do: give --local, --remote, --allow-listen, --send or --accept-files (see gander --help)")
		return pairing{}, false
	}
	for _, pattern := range allowListen {
		if _, err := path.Match(pattern, ""); err != nil {
			fmt.Fprintf(stderr, "gander: bad --allow-listen pattern %q: %v\n", pattern, err)
			return pairing{}, false
		}
	}
	for _, spec := range locals {
		l, err := session.ParseLocal(spec)
		if err != nil {
			fmt.Fprintln(stderr, "gander:", err)
			return pairing{}, false
		}
		cfg.Locals = append(cfg.Locals, l)
	}
	for _, spec := range remotes {
		r, err := session.ParseRemote(spec)
		if err != nil {
			fmt.Fprintln(stderr, "gander:", err)
			return pairing{}, false
		}
		cfg.Remotes = append(cfg.Remotes, r)
	}
	if cfg.Code != "" {
		code, err := codes.Parse(cfg.Code)
		if err != nil {
			fmt.Fprintln(stderr, "gander:", err)
			return pairing{}, false
		}
		cfg.Code = code
	}
	if p.frontend == frontendTUI && p.logFile == "" {
		p.logFile = defaultLogPath()
	}
	p.cfg = cfg
	return p, true
}

// runPairing runs the session with its frontend.
func runPairing(ctx context.Context, p pairing, stdin io.Reader, stdout, stderr io.Writer) int {
	logger, closeLog, err := openLog(p.logFile)
	if err != nil {
		fmt.Fprintln(stderr, "gander:", err)
		return 1
	}
	defer closeLog()
	cfg := p.cfg
	cfg.Logger = logger

	switch p.frontend {
	case frontendTUI:
		err = tui.RunPairing(ctx, cfg, p.sends, tui.Options{
			Code: cfg.Code, CodeLength: cfg.CodeLength, Version: version,
			Logger: logger, NoColor: os.Getenv("NO_COLOR") != "",
		})
	case frontendFowld:
		// A closed stdout must be an error fowld.Run sees (it ends the
		// session cleanly), not a SIGPIPE that kills gander mid-session.
		signal.Ignore(syscall.SIGPIPE)
		err = fowld.Run(ctx, cfg, stdin, stdout)
	case frontendLines:
		err = plain.Run(ctx, cfg, p.sends, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gander:", describe(err))
		return 1
	}
	return 0
}

// defaultSaveDir is ~/Downloads if there is one, else the current
// directory.
func defaultSaveDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		dir := filepath.Join(home, "Downloads")
		if info, err := os.Stat(dir); err == nil && info.IsDir() {
			return dir
		}
	}
	if dir, err := os.Getwd(); err == nil {
		return dir
	}
	return "."
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// defaultLogPath is the app's log under the user's state directory
// (XDG_STATE_HOME, else ~/.local/state): the screen is the app's.
func defaultLogPath() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(os.TempDir(), "gander.log")
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "gander", "gander.log")
}

// parseSize reads a byte count: a number, optionally followed by K, M, G,
// T (powers of 1024; "KiB", "KB" and "k" mean the same).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	var shift uint
	if i := strings.IndexAny(t, "KMGT"); i >= 0 && i == len(t)-1 {
		shift = 10 * uint(1+strings.IndexByte("KMGT", t[i]))
		t = t[:i]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with K, M, G or T)", s)
	}
	return n << shift, nil
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
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && !strings.Contains(name, "=") && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), positional...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// openLog opens the debug log at path (none if path is empty) within
// logcap's bounds: a peer, a stranger or the mailbox server can cause a
// log line per message they send, so lines are rate-limited, their strings
// truncated and the file capped. A file already at its cap from earlier
// sessions is moved to path+".1" (replacing the one there), so the log
// keeps the latest session and takes at most twice the cap on disk.
func openLog(path string) (*slog.Logger, func(), error) {
	return openLogWithin(path, logcap.Limits{})
}

func openLogWithin(path string, limits logcap.Limits) (*slog.Logger, func(), error) {
	if path == "" {
		return slog.New(slog.DiscardHandler), func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("opening log: %w", err)
	}
	maxBytes := limits.MaxBytes
	if maxBytes <= 0 {
		maxBytes = logcap.MaxFileBytes
	}
	if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() && info.Size() >= maxBytes {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, nil, fmt.Errorf("opening log: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log: %w", err)
	}
	if info, err := f.Stat(); err == nil {
		limits.Written = info.Size()
	}
	h := logcap.New(f, limits, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), func() { h.Close(); f.Close() }, nil
}

// describe turns an error into one line for a person.
func describe(err error) string {
	switch {
	case errors.Is(err, wormhole.ErrCodeSpoiled):
		// Before ErrWrongCode: a stranger's malformed pake is both.
		return sanitize.Text(err.Error(), false)
	case errors.Is(err, wormhole.ErrWrongCode):
		return "wrong code: the other side typed a different code. Check it and try again."
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return sanitize.Text(err.Error(), false)
}
