package terminal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
)

// LocalScreen is a Host's Local output for a host whose own terminal
// shows the share only now and then (the gander app: it returns to the
// app while the share goes on). Until Show, what the PTY prints is
// dropped; while Show runs, it goes to the view's Out.
type LocalScreen struct {
	mu    sync.Mutex
	out   io.Writer   // nil while not shown
	modes ScreenModes // of what was shown, to undo on leaving
	// backlog is what the PTY printed while not shown, replayed on Show
	// (a shell's first prompt comes before its first Show), unless more
	// than maxBacklog came: then the redraw alone must do.
	backlog  []byte
	overflow bool
}

// maxBacklog bounds what a LocalScreen keeps while not shown.
const maxBacklog = 64 << 10

// Write is the PTY's output (Host's pump).
func (s *LocalScreen) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.out != nil:
		s.modes.Observe(b)
		s.out.Write(b) // a failing screen must not stop the share
	case !s.overflow && len(s.backlog)+len(b) <= maxBacklog:
		s.backlog = append(s.backlog, b...)
	default:
		s.overflow, s.backlog = true, nil
	}
	return len(b), nil
}

func (s *LocalScreen) set(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = w
	s.modes = ScreenModes{}
	if len(s.backlog) > 0 {
		s.modes.Observe(s.backlog)
		w.Write(s.backlog)
	}
	s.backlog, s.overflow = nil, false
}

// restore takes the view off the screen and returns what gives the screen
// back clean.
func (s *LocalScreen) restore() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = nil
	return s.modes.Restore()
}

// Show shows h full-screen on cfg.Out (its terminal in raw mode) and
// types cfg.In's keys into the PTY, unfiltered (they are the host's
// own), until the detach key (nil), the end of the command (nil), ctx
// or a failure of cfg.In. The PTY takes cfg.Size and follows Resized,
// and the program is asked to redraw. It restores the screen's modes
// before returning; the caller restores the terminal's raw mode.
func (s *LocalScreen) Show(ctx context.Context, h *Host, cfg GuestConfig) error {
	if cfg.DetachKey == 0 {
		cfg.DetachKey = DefaultDetachKey
	}
	s.set(cfg.Out)
	defer func() { io.WriteString(cfg.Out, s.restore()) }()
	if cfg.Size != nil {
		h.Resize(cfg.Size())
	}
	h.lastRefreshReset()
	h.refresh()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := make(chan error, 1)
	go func() { keys <- typeLocal(h, cfg.In, cfg.DetachKey) }()
	defer func() { cfg.In.Cancel(); <-keys }()
	for {
		select {
		case err := <-keys:
			keys <- nil // for the deferred wait
			if errors.Is(err, ErrDetached) || h.closedNow() {
				return nil
			}
			return err
		case <-cfg.Resized:
			if cfg.Size != nil {
				h.Resize(cfg.Size())
			}
		case <-h.Done():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// typeLocal copies the host's keys into the PTY up to the detach key.
func typeLocal(h *Host, in io.Reader, detach byte) error {
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			keys := buf[:n]
			i := bytes.IndexByte(keys, detach)
			if i >= 0 {
				keys = keys[:i]
			}
			if len(keys) > 0 {
				if _, werr := h.WriteLocal(keys); werr != nil {
					return werr
				}
			}
			if i >= 0 {
				return ErrDetached
			}
		}
		if err != nil {
			return err
		}
	}
}

func (h *Host) closedNow() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// Redraw asks the shared program to redraw (rate-limited, as a guest's
// WinSize is).
func (h *Host) Redraw() { h.refresh() }
