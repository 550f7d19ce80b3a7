package classic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gander-pair/gander/transit"
	"github.com/gander-pair/gander/wormhole"
)

// Config is what Send and Receive need.
type Config struct {
	MailboxURL    string
	ClientVersion string
	Logger        *slog.Logger // nil discards
	// Code to use; empty: Send allocates one of CodeLength words, Receive
	// asks for it.
	Code       string
	CodeLength int
	// TransitRelay is ours ("tcp:HOST:PORT", the reference's
	// --transit-helper); empty: none (the peer's are still dialled).
	TransitRelay string
	// NoListen neither listens nor advertises direct hints (the
	// reference's --no-listen).
	NoListen     bool
	HideProgress bool
	// Verify shows the verifier; the sender asks to confirm it.
	Verify bool

	// Receive only.
	AcceptFile bool   // accept without asking
	OutputFile string // where to write (an existing directory: into it)
	FreeSpace  FreeSpace
	Dir        string // where names are resolved; "" is the current directory
}

// Timeouts of a transfer, beyond the mailbox's.
const (
	// ConnectTimeout bounds the Transit race once the offer is accepted.
	ConnectTimeout = 60 * time.Second
	// IdleTimeout stops a transfer that moves no record for this long.
	IdleTimeout = 60 * time.Second
	// AckTimeout bounds the sender's wait for the receiver's ack after the
	// last byte: it may be unpacking a large directory.
	AckTimeout = 10 * time.Minute
	// MaxAckSize bounds the ack record.
	MaxAckSize = 4 << 10
)

var (
	// ErrConnectTimeout: no Transit connection within ConnectTimeout.
	ErrConnectTimeout = errors.New("could not connect to the other side (no direct path and no common relay)")
	// ErrTooManyBytes: the sender sent more than it offered.
	ErrTooManyBytes = errors.New("the sender sent more bytes than it offered: refused, nothing kept")
	// ErrTruncated: the connection ended before everything offered came.
	ErrTruncated = errors.New("the connection ended before the whole file arrived: nothing kept")
	// ErrBadHash: the receiver's sha256 differs from what was sent.
	ErrBadHash = errors.New("the receiver's sha256 of the data differs from ours: transfer failed")
)

// Mailbox is the part of a wormhole a transfer uses (*wormhole.Wormhole).
type Mailbox interface {
	Send(ctx context.Context, msg []byte) error
	Receive(ctx context.Context) ([]byte, error)
	DeriveKey(purpose string, length int) ([]byte, error)
	Verifier(ctx context.Context) ([]byte, error)
}

var _ Mailbox = (*wormhole.Wormhole)(nil)

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c Config) wormhole() wormhole.Config {
	return wormhole.Config{MailboxURL: c.MailboxURL, AppID: AppID, ClientVersion: c.ClientVersion, Logger: c.Logger}
}

// connector owns one Transit race and the goroutine reading its events.
type connector struct {
	race     *transit.Race[*recordConn]
	hints    []transit.Hint // ours, to send
	ours     map[string]bool
	selected chan *recordConn // the winner, once
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startConnector(cfg Config, k keys) (*connector, error) {
	var relays []transit.Hint
	if cfg.TransitRelay != "" {
		h, err := transit.ParseRelayLocation(cfg.TransitRelay)
		if err != nil {
			return nil, err
		}
		relays = append(relays, h)
	}
	side := make([]byte, 8)
	rand.Read(side)
	events := make(chan transit.Event)
	c := &connector{ours: map[string]bool{}, selected: make(chan *recordConn, 1), stop: make(chan struct{})}
	for _, r := range relays {
		c.ours[r.Address()] = true
	}
	rc := transit.RaceConfig[*recordConn]{
		Key: k.transit, Side: hex.EncodeToString(side), Relays: relays, NoListen: cfg.NoListen,
		Log: cfg.logger(), Events: events, Handshake: k.handshake, Discard: discardReceiver,
	}
	if k.isSender {
		rc.Select, rc.Discard = selectConn, discardSender
	}
	c.race, c.hints = transit.StartRace(rc)
	log := cfg.logger()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case ev := <-events:
				switch ev := ev.(type) {
				case transit.Selected[*recordConn]:
					c.selected <- ev.Result // buffered: the race selects once
				case transit.AttemptFailed:
					log.Debug("transit attempt failed", "err", ev.Err)
				}
			case <-c.stop:
				return
			}
		}
	}()
	return c, nil
}

// addHints dials the peer's hints, but not a relay we dial already.
func (c *connector) addHints(raw []json.RawMessage) {
	var hints []transit.Hint
	for _, h := range transit.ParseHints(raw) {
		if h.Relay && c.ours[h.Address()] {
			continue
		}
		hints = append(hints, h)
	}
	c.race.AddHints(hints)
}

// await waits for the race's connection.
func (c *connector) await(ctx context.Context) (*recordConn, error) {
	t := time.NewTimer(ConnectTimeout)
	defer t.Stop()
	select {
	case rc := <-c.selected:
		return rc, nil
	case <-t.C:
		return nil, ErrConnectTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close stops the race; a connection selected but not taken is closed.
func (c *connector) close() {
	c.race.Stop()
	close(c.stop)
	c.wg.Wait()
	c.race.Wait()
	select {
	case rc := <-c.selected:
		rc.conn.Close()
	default:
	}
}

// watch closes rc when ctx ends, so that a blocked read or write returns;
// the returned func ends the watch.
func watch(ctx context.Context, rc *recordConn) func() {
	stop := context.AfterFunc(ctx, func() { rc.conn.Close() })
	return func() { stop() }
}

// closeAfter closes the wormhole politely (bounded, even after Ctrl-C) and
// returns what matters most: what stopped the exchange, else the close's
// error.
func closeAfter(w *wormhole.Wormhole, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closeErr := w.Close(ctx)
	if cause != nil {
		return cause
	}
	return closeErr
}

// newWormhole opens the wormhole and shows the server's message.
func newWormhole(ctx context.Context, cfg Config, stderr io.Writer) (*wormhole.Wormhole, error) {
	w, err := wormhole.New(ctx, cfg.wormhole())
	if err != nil {
		return nil, err
	}
	if motd := w.MOTD(); motd != "" {
		fmt.Fprintf(stderr, "Server says: %s\n", sanitizeText(motd, true))
	}
	return w, nil
}
