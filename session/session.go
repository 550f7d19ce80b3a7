// Package session runs one gander pairing: it owns the wormhole, the
// dilated connection and the forwarder, and reports what happens as
// events. The plain-text mode and (later) the TUI sit on it.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/wormhole"
)

// Config describes a session.
type Config struct {
	MailboxURL   string
	TransitRelay string // "tcp:HOST:PORT"; empty for none
	NoDirect     bool   // relay only
	// Code joins an existing session; empty allocates a code of
	// CodeLength words.
	Code       string
	CodeLength int
	Locals     []forwards.Local
	Remotes    []forwards.Remote
	// Ask is consulted when the peer asks us to listen for a service we
	// did not configure; nil denies.
	Ask           forwards.Asker
	ClientVersion string
	Logger        *slog.Logger
	// CloseTimeout bounds the wait for the peer's goodbye; zero means 3 s.
	CloseTimeout time.Duration
}

// Event is something the session reports: one of the types below, a
// dilation.Status or a forwards.Event.
type Event any

type (
	// Welcome is the mailbox server's greeting.
	Welcome struct{ MOTD string }
	// CodeReady carries the code to give the peer.
	CodeReady struct{ Code string }
	// PeerConnected: the peer proved the code and the link is up.
	PeerConnected struct {
		Verifier []byte
		// PeerVersions is the peer's app_versions (fowl sends its features).
		PeerVersions json.RawMessage
	}
	// OfferFailed: a --remote service could not be set up.
	OfferFailed struct {
		Service string
		Err     error
	}
	// PeerClosing: the peer said goodbye.
	PeerClosing struct{}
)

// closingMessage is fowl's goodbye, an application message in the
// wormhole: each side sends it, waits for the other's, then closes.
type closingMessage struct {
	Closing *int `json:"closing"`
}

// openWormhole fills in cfg's defaults, connects to the mailbox with fowl's
// app id and gander's version fields, and reports the welcome: the start
// of every session, whoever drives it.
func openWormhole(ctx context.Context, cfg *Config, emit func(Event)) (*wormhole.Wormhole, error) {
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := wormhole.New(ctx, wormhole.Config{
		MailboxURL:    cfg.MailboxURL,
		AppID:         forwards.AppID,
		AppVersions:   forwards.AppVersions(),
		VersionExtra:  dilation.VersionFields(),
		ClientVersion: cfg.ClientVersion,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	emit(Welcome{MOTD: w.MOTD()})
	return w, nil
}

// Run runs a session until ctx ends or the peer closes, then closes
// politely: it sends fowl's goodbye, waits briefly for the peer's, and
// closes the mailbox.
func Run(ctx context.Context, cfg Config, emit func(Event)) error {
	w, err := openWormhole(ctx, &cfg, emit)
	if err != nil {
		return err
	}
	err = run(ctx, cfg, w, emit)
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.CloseTimeout)
	defer cancel()
	closeErr := w.Close(closeCtx)
	interrupted := ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err()))
	switch {
	case err != nil && !interrupted:
		return err
	case interrupted && errors.Is(closeErr, wormhole.ErrLonely):
		return fmt.Errorf("interrupted before the peer connected: %w", closeErr)
	case interrupted:
		return nil
	}
	return closeErr
}

func run(ctx context.Context, cfg Config, w *wormhole.Wormhole, emit func(Event)) error {
	code := cfg.Code
	var err error
	if code == "" {
		code, err = w.AllocateCode(ctx, cfg.CodeLength)
	} else {
		err = w.SetCode(ctx, code)
	}
	if err != nil {
		return err
	}
	emit(CodeReady{Code: code})

	verifier, err := w.Verifier(ctx)
	if err != nil {
		return err
	}
	versions, err := w.PeerVersion(ctx)
	if err != nil {
		return err
	}
	conn, err := dilation.Dilate(ctx, w, dilation.Config{
		TransitRelay: cfg.TransitRelay,
		NoDirect:     cfg.NoDirect,
		Logger:       cfg.Logger,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	emit(PeerConnected{Verifier: verifier, PeerVersions: versions["app_versions"]})

	policy := forwards.NewPolicy(cfg.Ask)
	for _, l := range cfg.Locals {
		policy.AddLocal(l)
	}
	fw, err := forwards.Start(conn, forwards.Config{
		Policy:       policy,
		OnEvent:      func(e forwards.Event) { emit(e) },
		Logger:       cfg.Logger,
		PeerIsGander: forwards.PeerIsGander(versions["app_versions"]),
	})
	if err != nil {
		return err
	}
	defer fw.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go reportStatus(runCtx, conn, emit)
	for _, r := range cfg.Remotes {
		go func() {
			if _, err := fw.Offer(runCtx, r); err != nil && runCtx.Err() == nil {
				emit(OfferFailed{Service: r.Name, Err: err})
			}
		}()
	}

	// The goodbye reader must outlive ctx: after Ctrl-C we still wait for
	// the peer's answer.
	readCtx, stopReading := context.WithCancel(context.Background())
	defer stopReading()
	peerClosing := make(chan struct{})
	go func() {
		if waitForClosing(readCtx, w) {
			close(peerClosing)
		}
	}()
	select {
	case <-ctx.Done():
		return sayGoodbye(w, peerClosing, cfg.CloseTimeout)
	case <-peerClosing:
		emit(PeerClosing{})
		return sendClosing(w)
	case <-conn.Done():
		return errors.New("the dilated connection stopped")
	}
}

func reportStatus(ctx context.Context, conn *dilation.Conn, emit func(Event)) {
	for {
		select {
		case st := <-conn.StatusUpdates():
			emit(st)
		case <-ctx.Done():
			return
		}
	}
}

// waitForClosing reads application messages until the peer's goodbye;
// other messages are ignored, as fowl ignores them.
func waitForClosing(ctx context.Context, w *wormhole.Wormhole) bool {
	for {
		msg, err := w.Receive(ctx)
		if err != nil {
			return false
		}
		var m closingMessage
		if json.Unmarshal(msg, &m) == nil && m.Closing != nil {
			return true
		}
	}
}

func sendClosing(w *wormhole.Wormhole) error {
	zero := 0
	msg, _ := json.Marshal(closingMessage{Closing: &zero})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return w.Send(ctx, msg)
}

// sayGoodbye sends our goodbye and waits (bounded) for the peer's.
func sayGoodbye(w *wormhole.Wormhole, peerClosing <-chan struct{}, timeout time.Duration) error {
	if err := sendClosing(w); err != nil {
		return err
	}
	select {
	case <-peerClosing:
	case <-time.After(timeout):
	}
	return nil
}
