package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creack/pty"
)

// Bounds of a host.
const (
	// MaxGuests attached at once; more are refused.
	MaxGuests = 4
	// MaxQueuedOutput is how many chunks of output (each at most
	// outputChunk bytes) wait for one guest; a guest that falls further
	// behind is disconnected rather than held in memory.
	MaxQueuedOutput = 256
	outputChunk     = 32 << 10
	// refreshInterval: a guest's WinSize asks for a redraw at most this
	// often (tty-share redraws on every one).
	refreshInterval = time.Second
	writeTimeout    = 30 * time.Second
)

// Event is what a host reports: one of the types below.
type Event interface{ isEvent() }

type (
	// GuestJoined: a guest attached.
	GuestJoined struct{ Guest int }
	// GuestLeft: it left, or was disconnected (Err says why; nil after a
	// normal close).
	GuestLeft struct {
		Guest int
		Err   error
	}
	// InputDropped: a guest's input did not reach the PTY, whole or in
	// part (Bytes of it), for Reason.
	InputDropped struct {
		Guest  int
		Bytes  int
		Reason string
	}
	// Exited: the shared command ended; the host is done.
	Exited struct{ Err error }
)

func (GuestJoined) isEvent()  {}
func (GuestLeft) isEvent()    {}
func (InputDropped) isEvent() {}
func (Exited) isEvent()       {}

// ReasonReadOnly is InputDropped's reason while guests may not type.
const ReasonReadOnly = "read-only: guests may not type"

// Errors of a host.
var (
	ErrTooManyGuests = fmt.Errorf("terminal: too many guests (at most %d)", MaxGuests)
	ErrGuestTooSlow  = fmt.Errorf("terminal: the guest fell %d chunks of output behind", MaxQueuedOutput)
	ErrHostClosed    = errors.New("terminal: the shared terminal has ended")
)

// HostConfig configures a Host.
type HostConfig struct {
	// Command is the program to share and its arguments; empty runs
	// $SHELL (or /bin/sh).
	Command []string
	Dir     string
	Env     []string // nil: this process's environment
	// ReadOnly drops every guest's input (SetReadOnly changes it).
	ReadOnly bool
	// Size is the PTY's first size; zero is 80x24.
	Size WinSize
	// Local receives everything the PTY prints, as the host's own
	// terminal shows it; nil discards it.
	Local io.Writer
	// OnEvent receives events from the host's goroutines; it must not
	// block for long. Nil drops them.
	OnEvent func(Event)
}

// Host runs a command in a PTY and shares it: its output goes to Local
// and to every attached guest, its input comes from the host (WriteLocal)
// and from guests that may type (FilterInput applies to theirs).
//
// It owns the PTY, the command and one reader goroutine; each Attach
// owns the goroutines of its guest. Close ends them all.
type Host struct {
	cfg      HostConfig
	ptmx     *os.File
	cmd      *exec.Cmd
	readOnly atomic.Bool
	emit     func(Event)
	done     chan struct{}
	exitErr  error
	nextID   atomic.Int64
	slots    chan struct{}

	writeMu sync.Mutex  // one writer to the PTY at a time
	modes   ScreenModes // of the output, read by pump only until done

	mu          sync.Mutex
	size        WinSize
	guests      map[int]*attached
	lastRefresh time.Time
	closed      bool
}

// attached is one guest's output queue and permission.
type attached struct {
	out     chan Message
	kick    chan error // buffered 1: why the host drops the guest
	mayType bool       // AllowTyping: typing while the host is read-only
}

// StartHost starts cfg.Command in a PTY.
func StartHost(cfg HostConfig) (*Host, error) {
	argv := cfg.Command
	if len(argv) == 0 {
		shell := os.Getenv("SHELL")
		if shell == "" {
			shell = "/bin/sh"
		}
		argv = []string{shell}
	}
	if cfg.Size.Cols <= 0 || cfg.Size.Rows <= 0 {
		cfg.Size = WinSize{Cols: 80, Rows: 24}
	}
	if cfg.Local == nil {
		cfg.Local = io.Discard
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(Event) {}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = cfg.Dir
	cmd.Env = cfg.Env
	ptmx, err := pty.StartWithSize(cmd, winsize(cfg.Size))
	if err != nil {
		return nil, fmt.Errorf("terminal: starting %s: %w", argv[0], err)
	}
	h := &Host{
		cfg: cfg, ptmx: ptmx, cmd: cmd, emit: cfg.OnEvent,
		done: make(chan struct{}), slots: make(chan struct{}, MaxGuests),
		size: cfg.Size, guests: map[int]*attached{},
	}
	h.readOnly.Store(cfg.ReadOnly)
	go h.pump()
	return h, nil
}

func winsize(s WinSize) *pty.Winsize {
	return &pty.Winsize{Cols: uint16(s.Cols), Rows: uint16(s.Rows)}
}

// pump copies the PTY's output to Local and the guests until the command
// ends (the PTY then reads EIO), then reaps it.
func (h *Host) pump() {
	buf := make([]byte, outputChunk)
	for {
		n, err := h.ptmx.Read(buf)
		if n > 0 {
			h.modes.Observe(buf[:n])
			h.cfg.Local.Write(buf[:n])
			h.broadcast(Write{Data: append([]byte(nil), buf[:n]...)})
		}
		if err != nil {
			break
		}
	}
	h.exitErr = h.cmd.Wait()
	h.mu.Lock()
	h.closed = true
	for _, g := range h.guests {
		g.drop(ErrHostClosed)
	}
	// Under mu: Resize and refresh use the PTY's descriptor under it.
	h.ptmx.Close()
	h.mu.Unlock()
	close(h.done)
	h.emit(Exited{Err: h.exitErr})
}

func (h *Host) broadcast(m Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range h.guests {
		select {
		case g.out <- m:
		default:
			g.drop(ErrGuestTooSlow)
		}
	}
}

func (g *attached) drop(err error) {
	select {
	case g.kick <- err:
	default:
	}
}

// Restore is what gives the host's own terminal back clean once the
// command has ended (ScreenModes.Restore).
func (h *Host) Restore() string {
	<-h.done
	return h.modes.Restore()
}

// Done is closed once the command has ended.
func (h *Host) Done() <-chan struct{} { return h.done }

// Err is how the command ended, once Done is closed.
func (h *Host) Err() error {
	<-h.done
	return h.exitErr
}

// Close ends the command (SIGHUP, as a closed terminal does) and waits
// for the host to finish.
func (h *Host) Close() error {
	select {
	case <-h.done:
		return nil
	default:
	}
	if h.cmd.Process != nil {
		h.cmd.Process.Signal(hangup)
	}
	select {
	case <-h.done:
	case <-time.After(2 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
	return nil
}

// ReadOnly reports whether guests' input is dropped (except a guest's
// that AllowTyping let type).
func (h *Host) ReadOnly() bool { return h.readOnly.Load() }

// SetReadOnly allows every guest to type (false) or stops them (true),
// from their next message on.
func (h *Host) SetReadOnly(ro bool) { h.readOnly.Store(ro) }

// AllowTyping lets one guest (GuestJoined's number) type while the host
// is read-only, or takes that back: the host's permission, revocable at
// any time, from the guest's next message on.
func (h *Host) AllowTyping(guest int, allowed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.guests[guest]; ok {
		g.mayType = allowed
	}
}

// mayType: whether guest's input may reach the PTY now.
func (h *Host) mayType(guest int) bool {
	if !h.readOnly.Load() {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[guest]
	return ok && g.mayType
}

// WriteLocal types the host's own keys into the PTY, unfiltered.
func (h *Host) WriteLocal(b []byte) (int, error) {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	return h.ptmx.Write(b)
}

// Resize sets the PTY's size (the host's window changed) and tells the
// guests.
func (h *Host) Resize(s WinSize) error {
	if s.Cols <= 0 || s.Rows <= 0 {
		return nil
	}
	h.mu.Lock()
	h.size = s
	if h.closed {
		h.mu.Unlock()
		return ErrHostClosed
	}
	err := pty.Setsize(h.ptmx, winsize(s))
	h.mu.Unlock()
	if err != nil {
		return err
	}
	h.broadcast(s)
	return nil
}

// Size is the PTY's size.
func (h *Host) Size() WinSize {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.size
}

// refresh makes the program redraw, as tty-share does: a SIGWINCH by a
// resize one row short and back. Rate-limited: a guest can ask for it
// with every message.
func (h *Host) refresh() {
	h.mu.Lock()
	if time.Since(h.lastRefresh) < refreshInterval {
		h.mu.Unlock()
		return
	}
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.lastRefresh = time.Now()
	s := h.size
	if s.Rows > 1 {
		pty.Setsize(h.ptmx, winsize(WinSize{Cols: s.Cols, Rows: s.Rows - 1}))
	}
	pty.Setsize(h.ptmx, winsize(s))
}

// reserveGuest takes one of MaxGuests places.
func (h *Host) reserveGuest() (release func(), _ error) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	default:
		return nil, ErrTooManyGuests
	}
}

// Attach serves one guest on conn until it leaves, ctx ends, the host
// drops it or the command ends; it closes conn. The guest gets the
// window size, then the output from now on (the program is asked to
// redraw).
func (h *Host) Attach(ctx context.Context, conn MessageConn) error {
	defer conn.Close()
	id := int(h.nextID.Add(1))
	g := &attached{out: make(chan Message, MaxQueuedOutput), kick: make(chan error, 1)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHostClosed
	}
	g.out <- h.size
	h.guests[id] = g
	h.mu.Unlock()
	h.emit(GuestJoined{Guest: id})
	h.lastRefreshReset()
	h.refresh()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { // our output to the guest
		defer wg.Done()
		for {
			select {
			case m := <-g.out:
				wctx, wcancel := context.WithTimeout(ctx, writeTimeout)
				err := conn.WriteMessage(wctx, m)
				wcancel()
				if err != nil {
					errs <- err
					return
				}
			case err := <-g.kick:
				errs <- err
				return
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	go func() { // the guest's messages
		defer wg.Done()
		errs <- h.serveInput(ctx, id, conn)
	}()
	err := <-errs
	cancel()
	conn.Close()
	wg.Wait()
	h.mu.Lock()
	delete(h.guests, id)
	h.mu.Unlock()
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		err = nil
	}
	h.emit(GuestLeft{Guest: id, Err: err})
	return err
}

func (h *Host) lastRefreshReset() {
	h.mu.Lock()
	h.lastRefresh = time.Time{}
	h.mu.Unlock()
}

func (h *Host) serveInput(ctx context.Context, id int, conn MessageConn) error {
	in := &guestInput{h: h, id: id}
	defer in.stop()
	for {
		m, err := conn.ReadMessage(ctx)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case Write:
			in.typed(m.Data)
		case WinSize:
			h.refresh()
		}
	}
}

// guestInput is one guest's way to the PTY: here, on the host, its input
// is let through or dropped, so that a modified guest cannot type either.
// An Escape key that ends a message waits EscapeHold for the next one
// (InputFilter).
type guestInput struct {
	h  *Host
	id int

	mu     sync.Mutex
	filter InputFilter
	timer  *time.Timer
	done   bool
}

func (g *guestInput) typed(data []byte) {
	if len(data) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
	if !g.h.mayType(g.id) {
		g.filter = InputFilter{}
		g.h.emit(InputDropped{Guest: g.id, Bytes: len(data), Reason: ReasonReadOnly})
		return
	}
	kept, reasons := g.filter.Filter(data)
	for _, r := range reasons {
		g.h.emit(InputDropped{Guest: g.id, Bytes: len(data) - len(kept), Reason: r})
	}
	if len(kept) > 0 {
		g.h.WriteLocal(kept)
	}
	if g.filter.Held() {
		g.timer = time.AfterFunc(EscapeHold, g.flush)
	}
}

func (g *guestInput) flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || !g.h.mayType(g.id) {
		return
	}
	if esc := g.filter.Flush(); esc != nil {
		g.h.WriteLocal(esc)
	}
}

func (g *guestInput) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	if g.timer != nil {
		g.timer.Stop()
	}
}
