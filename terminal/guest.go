package terminal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultDetachKey is Ctrl-]: it leaves a shared terminal, as in telnet.
const DefaultDetachKey = 0x1d

// DetachKeyName is how DefaultDetachKey is shown.
const DetachKeyName = "Ctrl-]"

const clearScreen = "\x1b[H\x1b[2J"

// ErrDetached: the guest pressed the detach key.
var ErrDetached = errors.New("terminal: detached")

// CancelReader is an input that Cancel makes return, such as
// github.com/muesli/cancelreader's: the guest's keyboard.
type CancelReader interface {
	io.Reader
	Cancel() bool
}

// GuestConfig configures RunGuest.
type GuestConfig struct {
	// In is the guest's keyboard (its terminal in raw mode), Out its
	// screen.
	In  CancelReader
	Out io.Writer
	// Size is the guest's window size now; Resized signals it changed.
	Size    func() WinSize
	Resized <-chan struct{}
	// DetachKey leaves; zero means DefaultDetachKey.
	DetachKey byte
}

// RunGuest shows the host's terminal on cfg.Out (through OutputFilter:
// no clipboard writes, passthrough or terminal queries) and sends cfg.In's keys
// to it (the host decides whether they reach its PTY) until the host
// ends (nil), the guest detaches (ErrDetached), ctx ends or the
// connection fails. While the guest's window is smaller than the host's
// it shows a notice instead, as tty-share does. It restores the
// screen's modes before returning (the caller restores the terminal's
// raw mode) and closes conn.
func RunGuest(ctx context.Context, conn MessageConn, cfg GuestConfig) error {
	if cfg.DetachKey == 0 {
		cfg.DetachKey = DefaultDetachKey
	}
	v := &guestView{out: cfg.Out, size: cfg.Size}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the host's output
		defer wg.Done()
		errs <- v.render(ctx, conn)
	}()
	go func() { // our keys
		defer wg.Done()
		errs <- sendKeys(ctx, conn, cfg.In, cfg.DetachKey)
	}()
	go func() { // our window
		defer wg.Done()
		for {
			select {
			case <-cfg.Resized:
				s := v.ourSizeChanged()
				conn.WriteMessage(ctx, s)
			case <-ctx.Done():
				errs <- nil
				return
			}
		}
	}()
	err := <-errs
	cancel()
	cfg.In.Cancel()
	conn.Close()
	wg.Wait()
	io.WriteString(cfg.Out, v.modes.Restore())
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// sendKeys sends what the guest types, up to the detach key.
func sendKeys(ctx context.Context, conn MessageConn, in io.Reader, detach byte) error {
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
				if werr := conn.WriteMessage(ctx, Write{Data: append([]byte(nil), keys...)}); werr != nil {
					return werr
				}
			}
			if i >= 0 {
				return ErrDetached
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// guestView is what the guest's screen shows: the host's output, or a
// notice while the window is too small for it.
type guestView struct {
	out  io.Writer
	size func() WinSize

	mu     sync.Mutex
	filter OutputFilter // what the host may do to our terminal
	modes  ScreenModes  // what it did, to undo
	host   WinSize
	muted  bool
	ourWas WinSize
}

func (v *guestView) render(ctx context.Context, conn MessageConn) error {
	for {
		m, err := conn.ReadMessage(ctx)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case Write:
			v.mu.Lock()
			// Filtered even while muted: the filter's state follows
			// the stream.
			shown := v.filter.Filter(m.Data)
			v.modes.Observe(shown)
			if !v.muted {
				v.out.Write(shown)
			}
			v.mu.Unlock()
		case WinSize:
			v.mu.Lock()
			v.host = m
			v.decideLocked(v.size())
			v.mu.Unlock()
		}
	}
}

func (v *guestView) ourSizeChanged() WinSize {
	s := v.size()
	v.mu.Lock()
	v.decideLocked(s)
	v.mu.Unlock()
	return s
}

// decideLocked mutes the output while our window is smaller than the
// host's (what the host's programs draw would wrap into garbage).
func (v *guestView) decideLocked(ours WinSize) {
	small := ours.Cols < v.host.Cols || ours.Rows < v.host.Rows
	switch {
	case small:
		v.muted = true
		fmt.Fprintf(v.out, "%s\r\nYour window is smaller than the host's: please make it larger.\r\n"+
			"\tHost's window: %dx%d\r\n\tYour window:   %dx%d\r\n", clearScreen, v.host.Cols, v.host.Rows, ours.Cols, ours.Rows)
	case v.muted:
		v.muted = false
		io.WriteString(v.out, clearScreen) // the host redraws on our WinSize
	}
	v.ourWas = ours
}
