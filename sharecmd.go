package main

// gander share / gander join: a shared terminal with shwim's app id, so
// that `shwim CODE` joins `gander share` and `gander join CODE` joins
// `shwim`. As shwim does over fowl's protocol, the host offers the
// service "tty-share" (fowl's fledge: its tty-share server runs here) and
// the guest accepts it (fowl's roost: it listens on loopback, and its
// tty-share client connects there). The session package is fowl's app id
// only, so this wires wormhole, dilation, forwards and terminal itself.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/muesli/cancelreader"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/terminal"
	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/codes"
)

const (
	// shwimAppID is shwim's (meejah.ca/shwim, shwim 26.8).
	shwimAppID = "meejah.ca/shwim"
	// shwimService is the fowl service name shwim shares tty-share as.
	shwimService = "tty-share"
	// peerTimeout bounds the wait, once the code is known, for the peer's
	// key and the first Dilation connection.
	peerTimeout = 10 * time.Minute
	// listenTimeout bounds the guest's wait for the host's offer.
	listenTimeout = 2 * time.Minute
)

// shareCommand is `gander share` or `gander join CODE`.
type shareCommand struct {
	join       bool
	code       string // join
	readOnly   bool   // share
	command    string // share: sh -c COMMAND instead of a shell
	mailboxURL string
	relay      string
	noDirect   bool
	codeLength int
	logFile    string
}

func parseShare(name string, args []string, stderr io.Writer) (shareCommand, bool) {
	fs := flag.NewFlagSet("gander "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr) }
	c := shareCommand{join: name == "join"}
	fs.BoolVar(&c.readOnly, "read-only", false, "")
	fs.StringVar(&c.command, "command", "", "")
	fs.StringVar(&c.mailboxURL, "mailbox", wormhole.DefaultMailboxURL, "")
	fs.StringVar(&c.relay, "relay", session.DefaultTransitRelay, "")
	fs.BoolVar(&c.noDirect, "no-direct", false, "")
	fs.IntVar(&c.codeLength, "code-length", codes.DefaultLength, "")
	fs.StringVar(&c.logFile, "log", "", "")
	if err := fs.Parse(reorderFlags(fs, args)); err != nil {
		return c, false
	}
	switch {
	case c.join && fs.NArg() != 1:
		fmt.Fprintln(stderr, "gander join: give the code the host was given: gander join CODE")
		return c, false
	case c.join && (c.readOnly || c.command != ""):
		fmt.Fprintln(stderr, "gander join: --read-only and --command are the host's (gander share)")
		return c, false
	case !c.join && fs.NArg() > 0:
		fmt.Fprintln(stderr, "gander share: takes no code (it prints one); to join, use gander join CODE")
		return c, false
	case c.codeLength < 1:
		fmt.Fprintf(stderr, "gander %s: --code-length must be at least 1\n", name)
		return c, false
	}
	if c.join {
		code, err := codes.Parse(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "gander join: %v\n", err)
			return c, false
		}
		c.code = code
	}
	return c, true
}

func runShare(ctx context.Context, c shareCommand, in io.Reader, stdout, stderr io.Writer) int {
	stdin, isFile := in.(*os.File)
	logger, closeLog, err := openLog(c.logFile)
	if err != nil {
		fmt.Fprintln(stderr, "gander:", err)
		return 1
	}
	defer closeLog()
	name := "share"
	if c.join {
		name = "join"
	}
	if !isFile || !term.IsTerminal(stdin.Fd()) {
		fmt.Fprintf(stderr, "gander %s: needs a terminal\n", name)
		return 2
	}
	p, err := connectShwim(ctx, c, stdout, logger)
	if err == nil {
		defer p.close()
		if c.join {
			err = joinShared(ctx, p, stdin, stdout, logger)
		} else {
			err = hostShared(ctx, c, p, stdin, stdout, logger)
		}
	}
	if err != nil && !errors.Is(err, terminal.ErrDetached) {
		fmt.Fprintf(stderr, "gander %s: %s\n", name, describe(err))
		return 1
	}
	return 0
}

// shwimPeer is a dilated wormhole with shwim's app id and fowl's
// forwarder on it.
type shwimPeer struct {
	w         *wormhole.Wormhole
	conn      *dilation.Conn
	forwarder *forwards.Forwarder
	events    chan forwards.Event
}

func (p *shwimPeer) close() {
	if p.forwarder != nil {
		p.forwarder.Close()
	}
	if p.conn != nil {
		p.conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p.w.Close(ctx)
}

// connectShwim opens the wormhole (allocating the code, or using
// c.code), waits for the peer, dilates and starts the forwarder.
func connectShwim(ctx context.Context, c shareCommand, stdout io.Writer, logger *slog.Logger) (*shwimPeer, error) {
	w, err := wormhole.New(ctx, wormhole.Config{
		MailboxURL: c.mailboxURL, AppID: shwimAppID,
		// fowl's own app_versions, as shwim's fowl sends them.
		AppVersions:   map[string]any{"fowl": map[string]any{"features": []string{"core-v1"}}},
		VersionExtra:  dilation.VersionFields(),
		ClientVersion: version, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	p := &shwimPeer{w: w, events: make(chan forwards.Event, 64)}
	fail := func(err error) (*shwimPeer, error) { p.close(); return nil, err }
	if c.join {
		err = w.SetCode(ctx, c.code)
	} else {
		var code string
		code, err = w.AllocateCode(ctx, c.codeLength)
		if err == nil {
			fmt.Fprintf(stdout, "gander share: the code is %s\n  your guest runs: shwim %s   (or: gander join %s)\n", code, code, code)
			if c.readOnly {
				fmt.Fprintln(stdout, "  read-only: the guest can watch, not type")
			}
		}
	}
	if err != nil {
		return fail(err)
	}
	pctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	if _, err := w.Verifier(pctx); err != nil {
		return fail(err)
	}
	fmt.Fprintln(stdout, "gander: the peer is here; connecting…")
	relay := c.relay
	p.conn, err = dilation.Dilate(pctx, w, dilation.Config{TransitRelay: relay, NoDirect: c.noDirect, Logger: logger})
	if err != nil {
		return fail(err)
	}
	policy := forwards.NewPolicy(nil)
	if c.join {
		policy.AddLocal(forwards.Local{Name: shwimService})
	}
	p.forwarder, err = forwards.Start(p.conn, forwards.Config{
		Policy: policy, Logger: logger,
		OnEvent: func(ev forwards.Event) {
			select {
			case p.events <- ev:
			default: // only the first few matter (Listening); the rest are log lines
				logger.Debug("forward event dropped", "event", fmt.Sprintf("%T", ev))
			}
		},
	})
	if err != nil {
		return fail(err)
	}
	return p, nil
}

// hostShared runs the shared command on this terminal, serves it as
// tty-share on a loopback port and offers that port to the peer.
func hostShared(ctx context.Context, c shareCommand, p *shwimPeer, stdin *os.File, stdout io.Writer, logger *slog.Logger) error {
	cols, rows, err := term.GetSize(stdin.Fd())
	if err != nil {
		cols, rows = 80, 24
	}
	var argv []string
	if c.command != "" {
		argv = []string{"/bin/sh", "-c", c.command}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if _, err := p.forwarder.Offer(ctx, forwards.Remote{Name: shwimService, ConnectPort: port}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gander: sharing this terminal%s; exit the shell (or the command) to stop.\n", map[bool]string{true: " read-only", false: ""}[c.readOnly])
	state, err := term.MakeRaw(stdin.Fd())
	if err != nil {
		return err
	}
	defer term.Restore(stdin.Fd(), state)
	host, err := terminal.StartHost(terminal.HostConfig{
		Command: argv, ReadOnly: c.readOnly, Size: terminal.WinSize{Cols: cols, Rows: rows}, Local: stdout,
		OnEvent: func(ev terminal.Event) { logger.Info("shared terminal", "event", fmt.Sprintf("%T%+v", ev, ev)) },
	})
	if err != nil {
		return err
	}
	defer func() {
		host.Close()
		// Whatever the shared programs left on (the alternate screen,
		// mouse reporting, a hidden cursor) is turned off.
		io.WriteString(stdout, host.Restore())
	}()
	srv := &http.Server{Handler: terminal.Handler(host), ReadHeaderTimeout: 10 * time.Second}
	// Only our own forwarder (and our user's processes) may reach the
	// shared terminal on its loopback port.
	go srv.Serve(terminal.SameUserListener(l, func(err error) { logger.Warn("shared terminal", "refused", err) }))
	defer srv.Close()

	keys, err := cancelreader.NewReader(stdin)
	if err != nil {
		return err
	}
	defer keys.Close()
	keysDone := make(chan struct{})
	go func() { // the host's own keys
		defer close(keysDone)
		io.Copy(writerFunc(host.WriteLocal), keys)
	}()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	for {
		select {
		case <-winch:
			if cols, rows, err := term.GetSize(stdin.Fd()); err == nil {
				host.Resize(terminal.WinSize{Cols: cols, Rows: rows})
			}
		case <-host.Done():
			keys.Cancel()
			<-keysDone
			return nil
		case <-ctx.Done():
			host.Close()
			keys.Cancel()
			<-keysDone
			return ctx.Err()
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// joinShared waits for the host's offer, connects to it through our
// forward and shows it on this terminal.
func joinShared(ctx context.Context, p *shwimPeer, stdin *os.File, stdout io.Writer, logger *slog.Logger) error {
	addr, err := waitListening(ctx, p)
	if err != nil {
		return err
	}
	// The host's tty-share may start only after its offer (shwim's
	// does): try a few times, as shwim's guest does.
	var conn terminal.MessageConn
	for attempt := 0; ; attempt++ {
		conn, err = terminal.Dial(ctx, "http://"+addr+"/s/local/")
		if err == nil || attempt == 9 || ctx.Err() != nil {
			break
		}
		logger.Debug("tty-share not there yet", "err", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gander: joined; %s leaves.\r\n", terminal.DetachKeyName)
	state, err := term.MakeRaw(stdin.Fd())
	if err != nil {
		conn.Close()
		return err
	}
	defer term.Restore(stdin.Fd(), state)
	keys, err := cancelreader.NewReader(stdin)
	if err != nil {
		conn.Close()
		return err
	}
	defer keys.Close()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	resized := make(chan struct{}, 1)
	stopWinch := make(chan struct{})
	defer close(stopWinch)
	go func() {
		for {
			select {
			case <-winch:
				select {
				case resized <- struct{}{}:
				default:
				}
			case <-stopWinch:
				return
			}
		}
	}()
	size := func() terminal.WinSize {
		cols, rows, err := term.GetSize(stdin.Fd())
		if err != nil {
			return terminal.WinSize{Cols: 80, Rows: 24}
		}
		return terminal.WinSize{Cols: cols, Rows: rows}
	}
	err = terminal.RunGuest(ctx, conn, terminal.GuestConfig{In: keys, Out: stdout, Size: size, Resized: resized})
	if errors.Is(err, terminal.ErrDetached) {
		io.WriteString(stdout, "\r\ngander: detached.\r\n")
	} else if err == nil {
		io.WriteString(stdout, "\r\ngander: the host's terminal has ended.\r\n")
	}
	return err
}

// waitListening waits for our listener for the host's tty-share.
func waitListening(ctx context.Context, p *shwimPeer) (string, error) {
	timer := time.NewTimer(listenTimeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-p.events:
			switch ev := ev.(type) {
			case forwards.Listening:
				if ev.Service == shwimService {
					return ev.Addr, nil
				}
			case forwards.Refused:
				if ev.Service == shwimService {
					return "", fmt.Errorf("the host's terminal could not be reached: %s", ev.Reason)
				}
			}
		case <-p.conn.Done():
			return "", errors.New("the connection to the host ended")
		case <-timer.C:
			return "", fmt.Errorf("the host offered no terminal (%q) within %v", shwimService, listenTimeout)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}
