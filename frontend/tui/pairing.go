package tui

import (
	"context"
	"errors"

	"github.com/gander-pair/gander/session"
)

// RunPairing starts a session with cfg and runs the app on it until it
// ends, then again with a new code for as long as the person asks for one
// (n after a spoiled or wrong code, or once the peer left; the files to
// send come along while no peer has had them). The permission
// dialogs are the app's, so cfg.AskPeer is set. Errors are for the caller
// to print, after the terminal is restored; a session that ended before
// the peer came is no error.
func RunPairing(ctx context.Context, cfg session.Config, sends []string, opts Options) error {
	cfg.AskPeer = true
	err := runOnce(ctx, cfg, sends, opts)
	for errors.Is(err, ErrNewCode) && ctx.Err() == nil {
		cfg.Code, opts.Code = "", ""
		if peerCame(err) {
			sends = nil // they went to that peer
		}
		err = runOnce(ctx, cfg, sends, opts)
	}
	return err
}

// runOnce runs one session and the app on it; the app quits once the
// session has said goodbye.
func runOnce(ctx context.Context, cfg session.Config, sends []string, opts Options) error {
	sessionCtx, stopSession := context.WithCancel(ctx)
	defer stopSession()
	s, err := session.Start(sessionCtx, cfg)
	if err != nil {
		return err
	}
	if len(sends) > 0 {
		s.Do(session.SendFiles{Paths: sends})
	}
	appErr := Run(ctx, s, opts)
	stopSession()
	for range s.Events() {
		// The app has gone: what the session still says is not shown.
	}
	if err := s.Wait(); err != nil && !errors.Is(err, session.ErrLonely) && !errors.Is(appErr, ErrNewCode) {
		return err
	}
	return appErr
}
