// Package wormhole is the Magic Wormhole client protocol: two sides that
// share a short code meet in a mailbox, agree a key with SPAKE2, confirm it,
// and then exchange encrypted, numbered messages in order.
//
// It speaks the Python reference (magic-wormhole 0.24) byte for byte:
//
//	code → claim nameplate → open mailbox → add "pake" ───┐
//	peer "pake" → SPAKE2 key → add "version" (encrypted)  │ the mailbox
//	peer "version" decrypts → happy: verifier, app phases ┘ client retries
//	"0", "1", … app messages; "dilate-0", … Dilation's own
//
// A peer message that does not decrypt means the two codes differ: both
// sides fail with ErrWrongCode within one round trip.
package wormhole

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/gander-pair/gander/wormhole/codes"
	"github.com/gander-pair/gander/wormhole/mailbox"
	"github.com/gander-pair/gander/wormhole/spake2"
)

// DefaultMailboxURL is the public mailbox server the reference CLI uses.
const DefaultMailboxURL = "ws://relay.magic-wormhole.io:4000/v1"

// Errors callers branch on. Server-side failures arrive as
// *mailbox.ConnectError, *mailbox.WelcomeError and *mailbox.ServerError.
var (
	// ErrWrongCode means the peer's messages did not decrypt: it used a
	// different code (a typo, or someone guessing).
	ErrWrongCode = errors.New("wrong code: the other side used a different code")
	// ErrLonely means the wormhole was closed before a peer arrived.
	ErrLonely = errors.New("nobody came: the wormhole closed before the other side connected")
	// ErrClosed is returned by operations after Close.
	ErrClosed = errors.New("wormhole closed")
	// ErrNoKey is returned by DeriveKey before the key is confirmed.
	ErrNoKey = errors.New("wormhole key not established yet")
)

// PeerError is a protocol violation by the peer (a malformed pake, for
// instance), distinct from a wrong code.
type PeerError struct{ Reason string }

func (e *PeerError) Error() string { return "peer protocol error: " + e.Reason }

// ErrCodeSpoiled matches (errors.Is) every *SpoiledError.
var ErrCodeSpoiled = errors.New("this code is spoiled: start again with a new code")

// SpoiledError means someone other than the peer used the code's
// nameplate: a stranger wrote to the mailbox first, or (for the side that
// joins) the server found the nameplate already crowded. No key was
// agreed with anyone; the code cannot be used again and the person should
// start over with a new one (allocate a new code, or ask the peer for one).
type SpoiledError struct {
	Nameplate string
	// Crowded is the server refusing us: two other sides hold the
	// nameplate. Otherwise a stranger's message gave them away.
	Crowded bool
	// Reason says what gave the stranger away, for logs.
	Reason string
	// Err is the underlying error: ErrWrongCode for a pake the reference
	// would be scared by, a *PeerError, or the server's *ServerError.
	Err error
}

func (e *SpoiledError) Error() string {
	if e.Crowded {
		return fmt.Sprintf("nameplate %s is crowded: two other sides already use it, so someone else used this code "+
			"(or it was mistyped): this code is spoiled; ask your peer to start again with a new code", e.Nameplate)
	}
	return fmt.Sprintf("someone else used nameplate %s before your peer: this code is spoiled; start again with a new code", e.Nameplate)
}

func (e *SpoiledError) Is(target error) bool { return target == ErrCodeSpoiled }
func (e *SpoiledError) Unwrap() error        { return e.Err }

// Bounds on what the other side of the mailbox can make us hold. Before
// the key, "the other side" may be a stranger who took the nameplate.
const (
	// maxHeldBeforeKey caps the peer messages held until the key exists.
	// An honest peer sends at most its version before it has our pake;
	// more means whoever claimed the nameplate is not our peer.
	maxHeldBeforeKey = 8
	// maxHeldBytesBeforeKey caps their total size.
	maxHeldBytesBeforeKey = 1 << 20
	// MaxMessageSize is the largest plaintext Send and SendDilation take:
	// sealed, hex-encoded and framed it stays under the mailbox client's
	// read limit, so the peer (gander or not) can receive it.
	MaxMessageSize = (mailbox.MaxMessageSize-messageFraming)/2 - boxOverhead
	// messageFraming is room for the JSON around a relayed message.
	messageFraming = 4 << 10
)

// peerVersionWait is how long we hold our version, in the one exchange in
// 256 where wormhole-william derives another key than the reference (see
// spake2.Symmetric.FinishCompat), for the peer's to show which key it holds.
// wormhole-william and the reference send theirs as soon as they have our
// pake, so it comes within a mailbox round trip; a peer that holds its own
// too (gander) gets ours when this runs out.
var peerVersionWait = 3 * time.Second // a var for tests

// ErrMessageTooLarge is Send refusing a message over MaxMessageSize.
var ErrMessageTooLarge = fmt.Errorf("message too large: the mailbox relays at most %d bytes", MaxMessageSize)

// Config describes the wormhole to open.
type Config struct {
	// MailboxURL defaults to DefaultMailboxURL.
	MailboxURL string
	// AppID namespaces the exchange; both sides must use the same one.
	AppID string
	// AppVersions is sent to the peer as "app_versions" in the version
	// message; nil sends {}.
	AppVersions map[string]any
	// VersionExtra adds top-level keys to the version message; Dilation
	// uses it for "can-dilate" and "dilation-abilities".
	VersionExtra map[string]any
	// ClientVersion is reported to the server in bind.
	ClientVersion string
	Logger        *slog.Logger
	// ReconnectBackoff overrides the mailbox client's first retry delay.
	ReconnectBackoff time.Duration

	random io.Reader // SPAKE2's entropy; nil is crypto/rand (tests replay exchanges)
}

// Wormhole is one side of a wormhole. Its methods are safe for concurrent
// use.
type Wormhole struct {
	cfg Config
	log *slog.Logger
	mb  *mailbox.Client

	app, dilate *inbox
	confirmed   chan struct{} // closed once a peer message decrypted
	failed      chan struct{} // closed once err is set
	stopped     chan struct{} // closed when run has returned

	mu          sync.Mutex
	code        string
	pake        *spake2.Symmetric
	key         []byte
	verifier    []byte
	peerVersion map[string]json.RawMessage
	nameplate   string // the code's nameplate, for messages
	pakeSent    bool   // our pake is in the mailbox
	peerSide    string // side of the first message from the mailbox; "" before
	peerPake    []byte // the peer's SPAKE2 message, until the key is computed
	// gospake2Key is the key a wormhole-william peer derives when it
	// differs from key, until the peer's first sealed message shows which
	// one it holds; our version waits for that, up to peerVersionWait.
	gospake2Key []byte
	versionSent bool              // sendVersion has begun
	versionDone chan struct{}     // closed once our version is queued
	early       []mailbox.Message // peer messages held until the key exists; see maxHeldBeforeKey
	earlyBytes  int
	held        []outbound // our messages held until confirmation
	nextApp     int
	nextDilate  int
	err         error
	closing     bool
}

type outbound struct {
	phase     string
	plaintext []byte
}

// New connects to the mailbox server. Set or allocate a code next.
func New(ctx context.Context, cfg Config) (*Wormhole, error) {
	if cfg.MailboxURL == "" {
		cfg.MailboxURL = DefaultMailboxURL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mb, err := mailbox.Dial(ctx, mailbox.Config{
		URL:        cfg.MailboxURL,
		AppID:      cfg.AppID,
		Version:    cfg.ClientVersion,
		Logger:     log,
		MinBackoff: cfg.ReconnectBackoff,
	})
	if err != nil {
		return nil, err
	}
	w := &Wormhole{
		cfg:         cfg,
		log:         log.With("sub", "wormhole"),
		mb:          mb,
		app:         newInbox(),
		dilate:      newInbox(),
		confirmed:   make(chan struct{}),
		failed:      make(chan struct{}),
		versionDone: make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// MailboxStatus reports the mailbox server connection's changes (see
// mailbox.Client.StatusUpdates: only the latest waits to be read).
func (w *Wormhole) MailboxStatus() <-chan mailbox.Status { return w.mb.StatusUpdates() }

// ErrMailboxUnreachable matches (errors.Is) New failing because the
// mailbox server could not be reached.
var ErrMailboxUnreachable = mailbox.ErrUnreachable

// MOTD is the server's message of the day, if any (untrusted text).
func (w *Wormhole) MOTD() string { return w.mb.Welcome().MOTD }

// ListNameplates returns the nameplates in use, for code completion.
func (w *Wormhole) ListNameplates(ctx context.Context) ([]string, error) {
	return w.mb.List(ctx)
}

// AllocateCode asks the server for a nameplate, adds words random words
// and sets the resulting code, which it returns.
func (w *Wormhole) AllocateCode(ctx context.Context, words int) (string, error) {
	nameplate, err := w.mb.Allocate(ctx)
	if err != nil {
		return "", err
	}
	code, err := codes.Generate(nil, nameplate, words)
	if err != nil {
		return "", err
	}
	return code, w.SetCode(ctx, code)
}

// ClaimNameplate claims a nameplate before the rest of the code is known,
// as a person is still typing the words. SetCode claims it otherwise.
func (w *Wormhole) ClaimNameplate(ctx context.Context, nameplate string) error {
	w.mu.Lock()
	if w.nameplate == "" {
		w.nameplate = nameplate
	}
	w.mu.Unlock()
	_, err := w.mb.Claim(ctx, nameplate)
	return w.spoiledIfCrowded(nameplate, err)
}

// spoiledIfCrowded turns the server's "crowded" into a *SpoiledError that
// says what it means for the person.
func (w *Wormhole) spoiledIfCrowded(nameplate string, err error) error {
	if errors.Is(err, mailbox.ErrCrowded) {
		return &SpoiledError{Nameplate: nameplate, Crowded: true, Reason: "the server says crowded", Err: err}
	}
	return err
}

// SetCode sets the code typed by a person (or agreed offline), claims its
// nameplate and starts the key exchange.
func (w *Wormhole) SetCode(ctx context.Context, code string) error {
	code, err := codes.Parse(code)
	if err != nil {
		return err
	}
	pake, err := spake2.NewSymmetric([]byte(norm.NFC.String(code)), []byte(norm.NFC.String(w.cfg.AppID)), w.cfg.random)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.code != "" {
		w.mu.Unlock()
		return fmt.Errorf("code already set to %q", w.code)
	}
	w.code, w.pake = code, pake
	w.mu.Unlock()

	if err := w.ClaimNameplate(ctx, codes.Nameplate(code)); err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"pake_v1": hex.EncodeToString(pake.Message())})
	if err := w.mb.Add(ctx, "pake", body); err != nil {
		return err
	}
	w.mu.Lock()
	w.pakeSent = true
	w.mu.Unlock()
	w.computeKey()
	return w.failure()
}

// Code is the code in use, or "" before one is set.
func (w *Wormhole) Code() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.code
}

// Verifier waits until the peer has proved it holds the same key and
// returns a value both sides can compare to rule out a man in the middle.
func (w *Wormhole) Verifier(ctx context.Context) ([]byte, error) {
	if err := w.waitConfirmed(ctx); err != nil {
		return nil, err
	}
	return w.verifier, nil
}

// PeerVersion waits for key confirmation and returns the peer's version
// message, keyed by its top-level fields ("app_versions", "can-dilate", …).
func (w *Wormhole) PeerVersion(ctx context.Context) (map[string]json.RawMessage, error) {
	if err := w.waitConfirmed(ctx); err != nil {
		return nil, err
	}
	return w.peerVersion, nil
}

// DeriveKey derives a key for purpose from the confirmed shared key.
func (w *Wormhole) DeriveKey(purpose string, length int) ([]byte, error) {
	select {
	case <-w.confirmed:
		return DeriveKey(w.key, purpose, length), nil
	default:
		return nil, ErrNoKey
	}
}

func (w *Wormhole) waitConfirmed(ctx context.Context) error {
	select {
	case <-w.confirmed:
		return nil
	case <-w.failed:
		return w.failure()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send queues an application message: phases "0", "1", … in order. It is
// encrypted and sent once the peer is confirmed.
func (w *Wormhole) Send(ctx context.Context, msg []byte) error {
	if len(msg) > MaxMessageSize {
		return ErrMessageTooLarge // before taking a phase number: no gap
	}
	w.mu.Lock()
	phase := strconv.Itoa(w.nextApp)
	w.nextApp++
	w.mu.Unlock()
	return w.sendPhase(ctx, phase, msg)
}

// Receive returns the peer's next application message.
func (w *Wormhole) Receive(ctx context.Context) ([]byte, error) {
	return w.app.get(ctx, w.failed, w.failure)
}

// SendDilation sends Dilation's next mailbox message ("dilate-N").
func (w *Wormhole) SendDilation(ctx context.Context, msg []byte) error {
	if len(msg) > MaxMessageSize {
		return ErrMessageTooLarge
	}
	w.mu.Lock()
	phase := "dilate-" + strconv.Itoa(w.nextDilate)
	w.nextDilate++
	w.mu.Unlock()
	return w.sendPhase(ctx, phase, msg)
}

// ReceiveDilation returns the peer's next Dilation mailbox message.
func (w *Wormhole) ReceiveDilation(ctx context.Context) ([]byte, error) {
	return w.dilate.get(ctx, w.failed, w.failure)
}

func (w *Wormhole) sendPhase(ctx context.Context, phase string, plaintext []byte) error {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	select {
	case <-w.confirmed:
	default:
		w.held = append(w.held, outbound{phase, plaintext})
		w.mu.Unlock()
		return nil
	}
	box := seal(phaseKey(w.key, w.mb.Side(), phase), plaintext)
	w.mu.Unlock()
	return w.mb.Add(ctx, phase, box)
}

// Close closes the mailbox with a mood that says how things went, waits
// (bounded by ctx) for the server to confirm, and returns the error that
// ended the wormhole: nil after a good exchange, ErrLonely if no peer came.
func (w *Wormhole) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	err := w.err
	w.mu.Unlock()
	if err == nil {
		select {
		case <-w.confirmed:
			w.closeMailbox(ctx, mailbox.Happy)
		default:
			w.closeMailbox(ctx, mailbox.Lonely)
			err = ErrLonely
		}
		w.fail(ErrClosed)
	}
	<-w.stopped
	return err
}

func (w *Wormhole) closeMailbox(ctx context.Context, mood mailbox.Mood) {
	if err := w.mb.Close(ctx, mood); err != nil {
		w.log.Debug("closing mailbox", "err", err)
	}
}

// fail records the first error that ends the wormhole.
func (w *Wormhole) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.failed)
	}
}

func (w *Wormhole) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// run delivers mailbox messages until the mailbox client stops. When the
// wormhole fails on its own (wrong code, a broken peer, a server error) it
// closes the mailbox with the matching mood, as the reference does.
func (w *Wormhole) run() {
	defer close(w.stopped)
	for {
		select {
		case m, ok := <-w.mb.Messages():
			if !ok {
				if err := w.mb.Err(); err != nil {
					w.fail(err)
				}
				w.fail(ErrClosed)
				return
			}
			w.handle(m)
		case <-w.failed:
			w.mu.Lock()
			err, closing := w.err, w.closing
			w.mu.Unlock()
			if !closing {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				w.closeMailbox(ctx, moodFor(err))
				cancel()
			}
			return
		}
	}
}

func moodFor(err error) mailbox.Mood {
	var welcome *mailbox.WelcomeError
	switch {
	case errors.Is(err, ErrWrongCode), errors.Is(err, ErrCodeSpoiled):
		return mailbox.Scary
	case errors.As(err, &welcome):
		return mailbox.Unwelcome
	default:
		return mailbox.Errory
	}
}

// handle processes one message from the mailbox. The other side is
// whoever wrote first, and until the key is confirmed it may be a stranger
// who took the nameplate: only its pake is needed, so little else is held,
// and anything an honest peer would never send spoils the code.
func (w *Wormhole) handle(m mailbox.Message) {
	w.mu.Lock()
	if spoiled := w.screen(m); spoiled != nil {
		w.mu.Unlock()
		w.fail(spoiled)
		return
	}
	if m.Side != w.peerSide {
		// A third side after confirmation: only a lying server can let
		// one in, and nothing it says decrypts. Ignore it.
		w.mu.Unlock()
		w.log.Debug("ignoring a message from a third side", "side", m.Side, "phase", m.Phase)
		return
	}
	if m.Phase == "pake" {
		w.mu.Unlock()
		w.handlePake(m.Body)
		return
	}
	if w.key == nil {
		if len(w.early) >= maxHeldBeforeKey || w.earlyBytes+len(m.Body) > maxHeldBytesBeforeKey {
			w.mu.Unlock()
			w.fail(w.spoiled(fmt.Sprintf("sent more than %d messages or %d bytes before the key exchange", maxHeldBeforeKey, maxHeldBytesBeforeKey), nil))
			return
		}
		w.early = append(w.early, m)
		w.earlyBytes += len(m.Body)
		w.mu.Unlock()
		return
	}
	plaintext, err := open(phaseKey(w.key, m.Side, m.Phase), m.Body)
	if err != nil && w.gospake2Key != nil {
		if p, gospake2Err := open(phaseKey(w.gospake2Key, m.Side, m.Phase), m.Body); gospake2Err == nil {
			w.log.Debug("the peer derived wormhole-william's key; using it")
			w.key, plaintext, err = w.gospake2Key, p, nil
			w.verifier = DeriveKey(w.key, "wormhole:verifier", 32)
		}
	}
	w.gospake2Key = nil // the peer's first sealed message settles the key
	w.mu.Unlock()
	if err != nil {
		w.fail(ErrWrongCode)
		return
	}
	// Ours before anything else of ours: the peer reads a version first.
	w.sendVersion()
	if m.Phase == "version" {
		// Recorded before confirming, so PeerVersion never sees it missing.
		w.handleVersion(plaintext)
	}
	w.confirm()

	switch {
	case m.Phase == "version":
	case strings.HasPrefix(m.Phase, "dilate-"):
		w.deliver(w.dilate, strings.TrimPrefix(m.Phase, "dilate-"), plaintext)
	default:
		w.deliver(w.app, m.Phase, plaintext)
	}
}

// screen checks who wrote m, with w.mu held, and returns a *SpoiledError
// if it shows a stranger took the nameplate: a first message that is not a
// pake (every honest peer starts with its pake), or a second side writing
// before the peer is confirmed (the server admits two sides; a third means
// the mailbox was not private).
func (w *Wormhole) screen(m mailbox.Message) error {
	if w.peerSide == "" {
		if m.Phase != "pake" {
			return w.spoiled(fmt.Sprintf("side %q wrote phase %q before any pake", m.Side, m.Phase), nil)
		}
		w.peerSide = m.Side
		return nil
	}
	if m.Side == w.peerSide {
		return nil
	}
	select {
	case <-w.confirmed:
		return nil
	default:
		return w.spoiled(fmt.Sprintf("a second side %q wrote phase %q", m.Side, m.Phase), nil)
	}
}

// spoiled builds the *SpoiledError for our nameplate; w.mu is held.
func (w *Wormhole) spoiled(reason string, err error) *SpoiledError {
	nameplate := w.nameplate
	if nameplate == "" {
		nameplate = codes.Nameplate(w.code)
	}
	return &SpoiledError{Nameplate: nameplate, Reason: reason, Err: err}
}

func (w *Wormhole) deliver(b *inbox, number string, plaintext []byte) {
	n, err := strconv.Atoi(number)
	if err != nil || n < 0 || strconv.Itoa(n) != number {
		w.log.Debug("ignoring message with unknown phase", "phase", number)
		return
	}
	if err := b.put(n, plaintext); err != nil {
		w.fail(&PeerError{Reason: err.Error()})
	}
}

// handlePake checks the peer's pake and keeps it until the key can be
// computed. A pake no honest client sends spoils the code.
func (w *Wormhole) handlePake(body []byte) {
	var msg struct {
		Pake *string `json:"pake_v1"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Pake == nil {
		// The reference is "scared" by a pake without pake_v1.
		w.fail(w.spoiledLocked("its pake has no pake_v1", ErrWrongCode))
		return
	}
	inbound, err := hex.DecodeString(*msg.Pake)
	if err != nil {
		w.fail(w.spoiledLocked("its pake is not hex", &PeerError{Reason: "pake_v1 is not hex"}))
		return
	}
	w.mu.Lock()
	if w.peerPake == nil && w.key == nil {
		w.peerPake = inbound
	}
	w.mu.Unlock()
	w.computeKey()
}

func (w *Wormhole) spoiledLocked(reason string, err error) *SpoiledError {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.spoiled(reason, err)
}

// computeKey finishes SPAKE2 once both pakes are in the mailbox (ours is
// sent first, so the version never overtakes it), sends our version and
// handles what was held for the key.
func (w *Wormhole) computeKey() {
	w.mu.Lock()
	if w.key != nil || w.peerPake == nil || !w.pakeSent {
		w.mu.Unlock()
		return
	}
	key, gospake2Key, err := w.pake.FinishCompat(w.peerPake)
	w.peerPake = nil
	if err != nil {
		spoiled := w.spoiled("its pake is invalid", &PeerError{Reason: "key exchange: " + err.Error()})
		w.mu.Unlock()
		w.fail(spoiled)
		return
	}
	w.key, w.gospake2Key = key, gospake2Key
	w.verifier = DeriveKey(key, "wormhole:verifier", 32)
	early := w.early
	w.early, w.earlyBytes = nil, 0
	w.mu.Unlock()

	// The version message goes out at once, before the peer is confirmed:
	// it is what lets the peer confirm us. Unless the key is in doubt:
	// then the peer's first message settles it, or the wait runs out.
	if gospake2Key == nil {
		w.sendVersion()
	} else {
		w.log.Debug("a wormhole-william peer would derive another key; holding our version for the peer's", "up to", peerVersionWait)
		go w.sendVersionAfter(peerVersionWait)
	}
	for _, m := range early {
		w.handle(m)
	}
}

// sendVersionAfter sends our version once d has passed, unless the peer's
// first message (which sends it) or the end of the wormhole comes first.
func (w *Wormhole) sendVersionAfter(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		w.sendVersion()
	case <-w.versionDone:
	case <-w.failed:
	}
}

// sendVersion seals our version under the key settled on (the reference's
// if the peer has not shown another) and queues it, once; a second caller
// waits until the first has queued it, so nothing of ours overtakes it.
func (w *Wormhole) sendVersion() {
	w.mu.Lock()
	if w.versionSent {
		w.mu.Unlock()
		select {
		case <-w.versionDone:
		case <-w.failed:
		}
		return
	}
	w.versionSent = true
	w.gospake2Key = nil // from now on the peer must hold ours
	key := w.key
	w.mu.Unlock()
	defer close(w.versionDone)

	version := map[string]any{"app_versions": w.cfg.AppVersions}
	if w.cfg.AppVersions == nil {
		version["app_versions"] = map[string]any{}
	}
	for k, v := range w.cfg.VersionExtra {
		version[k] = v
	}
	plaintext, err := json.Marshal(version)
	if err != nil {
		w.fail(fmt.Errorf("encoding version message: %w", err))
		return
	}
	box := seal(phaseKey(key, w.mb.Side(), "version"), plaintext)
	if err := w.mb.Add(context.Background(), "version", box); err != nil {
		w.fail(err)
	}
}

func (w *Wormhole) handleVersion(plaintext []byte) {
	var version map[string]json.RawMessage
	if err := json.Unmarshal(plaintext, &version); err != nil {
		w.fail(&PeerError{Reason: "version message is not a JSON object"})
		return
	}
	w.mu.Lock()
	w.peerVersion = version
	w.mu.Unlock()
}

// confirm marks the key as confirmed on the first peer message that
// decrypts, and sends what was held until then.
func (w *Wormhole) confirm() {
	w.mu.Lock()
	select {
	case <-w.confirmed:
		w.mu.Unlock()
		return
	default:
	}
	close(w.confirmed)
	held := w.held
	w.held = nil
	w.mu.Unlock()
	for _, o := range held {
		if err := w.sendPhase(context.Background(), o.phase, o.plaintext); err != nil {
			w.fail(err)
			return
		}
	}
}
