// Package fowld is gander --json: it speaks fowld's stdin/stdout
// protocol, as fowld 26.8 implements it (fowl/_proto.py:
// parse_fowld_command, fowld_output_to_json and the _StatusTracker
// calls), so that a program written for fowld can drive gander
// unchanged. One JSON object per line each way.
//
// Commands (stdin); unknown keys are ignored, as fowld ignores them:
//
//	{"kind": "allocate-code", "length": N}         length optional (null or 0: --code-length)
//	{"kind": "set-code", "code": "7-foo-bar"}
//	{"kind": "local", "name": S, "local_listen_port": P, "remote_connect_port": P, "bind_interface": A}
//	{"kind": "remote", "name": S, "remote_listen_port": P, "local_connect_port": P, "connect_address": A}
//	{"kind": "session-close", "timeout": SECONDS}  timeout optional (default 10)
//	{"kind": "ping", "ping_id": X}                 always answered with an error, as in fowld 26.8
//
// gander's own, for file transfers with a gander peer (fowld has none;
// offers are refused unless --accept-files is given or accept-file
// answers them):
//
//	{"kind": "send-file", "path": P}               a file or a directory
//	{"kind": "accept-file", "id": N, "directory": D}   directory optional (--save-dir)
//	{"kind": "refuse-file", "id": N}
//	{"kind": "cancel-transfer", "id": N}
//
// gander's own, for a shared terminal with a gander peer (terminal-v1;
// the view itself needs a terminal, so --json hosts and steers a share
// but shows none: watch it from the app):
//
//	{"kind": "share-start", "command": S, "cols": N, "rows": N}   all optional: $SHELL, 80x24; read-only for the peer
//	{"kind": "share-stop"}
//	{"kind": "share-allow-typing"}      also answers a share-keyboard-requested (yes)
//	{"kind": "share-revoke-typing"}     also answers it (no)
//	{"kind": "share-ask-keyboard"}      as the peer's guest
//
// Events (stdout), keys in fowld's order, "kind" last, formatted as
// Python's json.dumps formats them (", " and ": " separators, non-ASCII
// escaped), so that even a controller matching text sees fowld's lines:
//
//	{"url": U, "welcome": {...}, "kind": "welcome"}
//	{"code": C, "kind": "code-allocated"}
//	{"verifier": HEX, "versions": {peer's app_versions}, "kind": "peer-connected"}
//	{"name": S, "listening_port": P, "kind": "listening"}             we listen for the peer's service
//	{"name": S, "local_port": P, "kind": "awaiting-connect"}          the peer listens for ours
//	{"service_name": S, "id": N, "kind": "outgoing-connection"}       a client came to our listener
//	{"service_name": S, "id": N, "kind": "outgoing-done"}
//	{"service_name": N, "reason": R, "kind": "outgoing-lost"}         sic: fowld puts the id there; done follows
//	{"service_name": S, "id": N, "kind": "incoming-connection"}       the peer connects to our daemon
//	{"id": N, "kind": "incoming-done"}
//	{"id": N, "reason": R, "kind": "incoming-lost"}
//	{"id": N, "bytes": B, "kind": "bytes-in"}                         from the local socket into the wormhole
//	{"id": N, "bytes": B, "kind": "bytes-out"}                        from the wormhole to the local socket
//	{"message": M, "kind": "error"}
//	{"result": "happy"|"lonely"|..., "kind": "closed"}                the last line
//	{"id": N, "name": S, "directory": B, "size": B, "files": N, "save_dir": D, "kind": "transfer-offered"}
//	{"id": N, "name": S, "outgoing": B, "bytes": B, "size": B, "kind": "transfer-progress"}
//	{"id": N, "name": S, "outgoing": B, "saved_as": P | "error": E, "kind": "transfer-finished"}
//	{"outgoing": B, "command": S, "kind": "share-offered"}            ours offered (outgoing) or the peer's
//	{"kind": "share-guest-joined"}                                     the peer watches ours
//	{"error": E, "kind": "share-guest-left"}                           error only if dropped
//	{"id": N, "kind": "share-keyboard-requested"}                     the peer asks to type
//	{"outgoing": B, "allowed": B, "reason": R, "kind": "share-typing"} who may type changed
//	{"bytes": N, "reason": R, "kind": "share-input-dropped"}          at most one a second
//	{"outgoing": B, "error": E, "kind": "share-ended"}                error only if it failed
//
// fowld 26.8 defines listening-failed, remote-connect-failed and pong but
// never emits them; neither does gander. A refused offer is an error
// ("Service \"S\" failed: REASON"), a refused listen request too ("Failed
// to listen on \"S\": REASON"), as in fowld.
//
// Deviations from fowld 26.8, on purpose:
//   - A line that is not a valid command (not JSON, not an object, no or
//     unknown kind, a missing or wrongly typed field, a port out of range)
//     gets {"message": ..., "kind": "error"} and is otherwise ignored.
//     fowld prints a plain-text line there ("b'...': failed: ..."), which
//     breaks a controller that parses every line; both keep running.
//     Types are checked strictly: fowld int()s or str()s some values
//     ("length": "3", "name": 5), gander refuses them. Blank lines are
//     skipped. A line longer than maxLineLength is an error too (fowld
//     stops reading its input).
//   - bytes-in/bytes-out come at most every TrafficInterval per
//     connection and direction, and once more as it closes, not one per
//     chunk read (fowld writes a line per chunk, thousands a second on a
//     busy stream). The sums are the same.
//   - A forwarded connection that fails on our side (a local client's
//     reset, say) is outgoing-lost/incoming-lost with the error, then
//     outgoing-done; fowld reports only the end (it says lost only when
//     the peer could not connect, which gander reports the same way).
//   - welcome carries the server's motd only (fowld passes the server's
//     whole welcome dict, e.g. "your-address").
//   - session-close waits up to its timeout for the peer's goodbye, as
//     fowld's documentation says (fowld 26.8 gives up after 1.2 s), then
//     exits with status 1 if it did not come (as fowld does).
//   - A failed session (wrong code, mailbox gone) ends with an error line
//     and exit status 1 (fowld exits 0). An interrupt (SIGINT, SIGTERM)
//     says goodbye like fowld and exits 0.
//   - Listeners bind 127.0.0.1 unless bind_interface says otherwise
//     (fowld binds every interface for a random port), and
//     bind_interface/connect_address must be IPv4 addresses or
//     "localhost".
package fowld

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/codes"
)

const (
	// maxLineLength bounds one command line.
	maxLineLength = 64 << 10
	// maxCodeLength bounds allocate-code's length (fowld has no bound).
	maxCodeLength = 64
	// defaultCloseTimeout is session-close's default, as in fowld.
	defaultCloseTimeout = 10 * time.Second
	// maxCloseTimeout keeps a session-close timeout a valid Duration.
	maxCloseTimeout = 1e9 // seconds
	// terminalMaxSide bounds share-start's cols and rows.
	terminalMaxSide = 10000
)

// Run runs a controlled session speaking fowld's protocol: commands
// are read from in, events written to out. It returns Closed's Err, but
// nil when lonely (fowld exits 0 then); a failure is also reported on
// out, except ErrCloseTimeout (its closed line says "happy": the
// mailbox closed happy, as fowld's does).
//
// If writing to out fails (a closed pipe, a full disk), nobody hears the
// session any more: it ends as if interrupted, and Run returns the
// write error, wrapped in ErrOutputFailed.
func Run(ctx context.Context, cfg session.Config, in io.Reader, out io.Writer) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	enc := newFowldWriter(out, cfg.MailboxURL, stop)
	s, err := session.Start(ctx, cfg)
	if err != nil {
		enc.errorLine(err.Error())
		return err
	}
	go readCommands(in, enc, s.Do)
	for ev := range s.Events() {
		enc.event(ev)
	}
	err = s.Wait()
	if errors.Is(err, session.ErrLonely) {
		err = nil
	}
	if werr := enc.failed(); werr != nil {
		return werr
	}
	if err != nil && !errors.Is(err, session.ErrCloseTimeout) {
		enc.errorLine(err.Error())
	}
	return err
}

// ErrOutputFailed: the events could not be written (Run's out).
var ErrOutputFailed = errors.New("writing events failed")

// readCommands decodes command lines and hands them to do until in ends
// or do fails (the session has ended); bad lines get an error line.
func readCommands(in io.Reader, enc *fowldWriter, do func(session.Command) error) {
	r := bufio.NewReaderSize(in, 4096)
	for {
		line, err := readLine(r)
		if errors.Is(err, errLineTooLong) {
			enc.errorLine(fmt.Sprintf("ignored an input line longer than %d bytes", maxLineLength))
			continue
		}
		if len(bytes.TrimSpace(line)) > 0 {
			cmd, cerr := decodeCommand(line)
			if cerr != nil {
				enc.errorLine(cerr.Error())
			} else if do(cmd) != nil {
				return
			}
		}
		if err != nil {
			return // end of input: the session goes on, as fowld's does
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline. A line longer than
// maxLineLength is skipped up to its end and reported as errLineTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > maxLineLength+1 { // +1: the newline
				tooLong, line = true, nil
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case tooLong:
			return nil, errLineTooLong // an error reading comes again next time
		}
		return bytes.TrimSuffix(line, []byte("\n")), err
	}
}

// commandError is a bad command line; its text quotes the line.
func commandError(line []byte, format string, args ...any) error {
	quoted := string(line)
	if len(quoted) > 120 {
		quoted = quoted[:120] + "..."
	}
	return fmt.Errorf("ignored input line %q: %s", quoted, fmt.Sprintf(format, args...))
}

// decodeCommand parses one command line.
func decodeCommand(line []byte) (session.Command, error) {
	if !json.Valid(line) {
		return nil, commandError(line, "not JSON")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil || obj == nil {
		return nil, commandError(line, "not a JSON object")
	}
	f := fields{obj: obj}
	kind, ok, err := f.str("kind")
	switch {
	case err != nil:
		return nil, commandError(line, "%v", err)
	case !ok:
		return nil, commandError(line, "No 'kind' in command")
	}
	var cmd session.Command
	switch kind {
	case "allocate-code":
		length, _, err := f.integer("length", 0, maxCodeLength)
		if err != nil {
			return nil, commandError(line, "%v", err)
		}
		cmd = session.AllocateCode{Length: int(length)}
	case "set-code":
		code, ok, err := f.str("code")
		if err == nil && !ok {
			err = errors.New(`"code" is missing`)
		}
		if err == nil {
			code, err = codes.Parse(code)
		}
		if err != nil {
			return nil, commandError(line, "%v", err)
		}
		cmd = session.SetCode{Code: code}
	case "local":
		l := session.Local{BindAddr: "127.0.0.1"}
		var err error
		l.Name, err = f.name()
		if err == nil {
			l.ListenPort, err = f.port("local_listen_port")
		}
		if err == nil {
			l.RemoteConnectPort, err = f.port("remote_connect_port")
		}
		if err == nil {
			err = f.address("bind_interface", &l.BindAddr)
		}
		if err != nil {
			return nil, commandError(line, "%v", err)
		}
		cmd = session.AddLocal{Local: l}
	case "remote":
		r := session.Remote{Address: "127.0.0.1"}
		var err error
		r.Name, err = f.name()
		if err == nil {
			r.ListenPort, err = f.port("remote_listen_port")
		}
		if err == nil {
			r.ConnectPort, err = f.port("local_connect_port")
		}
		if err == nil {
			err = f.address("connect_address", &r.Address)
		}
		if err != nil {
			return nil, commandError(line, "%v", err)
		}
		cmd = session.AddRemote{Remote: r}
	case "session-close":
		timeout := defaultCloseTimeout
		if raw, ok := f.get("timeout"); ok {
			var secs float64
			if err := json.Unmarshal(raw, &secs); err != nil || secs < 0 || secs > maxCloseTimeout {
				return nil, commandError(line, `"timeout" must be a number of seconds`)
			}
			timeout = time.Duration(secs * float64(time.Second))
		}
		cmd = session.Close{Timeout: timeout}
	case "send-file":
		path, ok, err := f.str("path")
		if err == nil && (!ok || path == "") {
			err = errors.New(`"path" is missing`)
		}
		if err != nil {
			return nil, commandError(line, "%v", err)
		}
		cmd = session.SendFiles{Paths: []string{path}}
	case "accept-file", "refuse-file", "cancel-transfer":
		id, ok, err := f.integer("id", 1, math.MaxInt64)
		if err == nil && !ok {
			err = errors.New(`"id" is missing`)
		}
		var dir string
		if err == nil && kind == "accept-file" {
			dir, _, err = f.str("directory")
		}
		if err != nil {
			return nil, commandError(line, "%v", err)
		}
		switch kind {
		case "accept-file":
			cmd = session.AcceptTransfer{ID: id, Dir: dir}
		case "refuse-file":
			cmd = session.RefuseTransfer{ID: id}
		default:
			cmd = session.CancelTransfer{ID: id}
		}
	case "share-start":
		command, _, err := f.str("command")
		var cols, rows int64
		if err == nil {
			cols, _, err = f.integer("cols", 1, terminalMaxSide)
		}
		if err == nil {
			rows, _, err = f.integer("rows", 1, terminalMaxSide)
		}
		if err != nil {
			return nil, commandError(line, "%v", err)
		}
		start := session.StartShare{Size: session.WinSize{Cols: int(cols), Rows: int(rows)}}
		if command != "" {
			start.Command = []string{"/bin/sh", "-c", command}
		}
		cmd = start
	case "share-stop":
		cmd = session.StopShare{}
	case "share-allow-typing":
		cmd = session.AllowTyping{}
	case "share-revoke-typing":
		cmd = session.RevokeTyping{}
	case "share-ask-keyboard":
		cmd = session.AskKeyboard{}
	case "ping":
		if _, ok := f.get("ping_id"); !ok {
			return nil, commandError(line, `"ping_id" is missing`)
		}
		cmd = session.Ping{}
	default:
		return nil, commandError(line, "unknown kind %q", kind)
	}
	return cmd, nil
}

// fields reads a command's fields; null counts as absent, as fowld's
// optional fields default to None.
type fields struct{ obj map[string]json.RawMessage }

func (f fields) get(key string) (json.RawMessage, bool) {
	raw, ok := f.obj[key]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return nil, false
	}
	return raw, true
}

func (f fields) str(key string) (string, bool, error) {
	raw, ok := f.get(key)
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("%q must be a string", key)
	}
	return s, true, nil
}

// integer reads an optional JSON integer in [low, high]; absent is 0.
func (f fields) integer(key string, low, high int64) (int64, bool, error) {
	raw, ok := f.get(key)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil || n < low || n > high {
		return 0, false, fmt.Errorf("%q must be an integer from %d to %d", key, low, high)
	}
	return n, true, nil
}

func (f fields) port(key string) (int, error) {
	n, _, err := f.integer(key, 1, 65535)
	return int(n), err
}

// name reads a service name: required, and free of control characters
// (it is shown to people on both sides).
func (f fields) name() (string, error) {
	name, ok, err := f.str("name")
	switch {
	case err != nil:
		return "", err
	case !ok || name == "":
		return "", errors.New(`"name" is missing`)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return "", errors.New(`"name" contains control characters`)
	}
	return name, nil
}

// address reads an optional IPv4 address ("localhost" is 127.0.0.1).
func (f fields) address(key string, addr *string) error {
	s, ok, err := f.str(key)
	if err != nil || !ok {
		return err
	}
	if s == "localhost" {
		*addr = "127.0.0.1"
		return nil
	}
	ip, perr := netip.ParseAddr(s)
	if perr != nil || !ip.Is4() {
		return fmt.Errorf("%q must be an IPv4 address", key)
	}
	*addr = ip.String()
	return nil
}

// fowldWriter writes events as fowld's output lines. Its methods are safe
// for concurrent use: each line is written whole.
//
// The first write error is kept and handed to fail (which stops the
// session); nothing is written after it.
type fowldWriter struct {
	mu   sync.Mutex
	w    io.Writer
	enc  fowldEncoder
	err  error
	fail func(error)
}

func newFowldWriter(w io.Writer, mailboxURL string, fail func(error)) *fowldWriter {
	return &fowldWriter{w: w, enc: newFowldEncoder(mailboxURL), fail: fail}
}

func (fw *fowldWriter) event(ev session.Event) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if out := fw.enc.encode(ev); len(out) > 0 {
		fw.writeLocked(out)
	}
}

func (fw *fowldWriter) errorLine(message string) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.writeLocked(errorLine(message))
}

func (fw *fowldWriter) writeLocked(line []byte) {
	if fw.err != nil {
		return
	}
	if _, err := fw.w.Write(line); err != nil {
		fw.err = fmt.Errorf("%w: %w", ErrOutputFailed, err)
		if fw.fail != nil {
			fw.fail(fw.err)
		}
	}
}

// failed is the write error that stopped the output, if any.
func (fw *fowldWriter) failed() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

func errorLine(message string) []byte {
	return pyObject{{"message", message}, {"kind", "error"}}.line()
}

// fowldEncoder turns events into fowld's lines. It remembers the open
// connections and how many of their bytes it has reported.
type fowldEncoder struct {
	url   string
	conns map[int64]connInfo
}

type connInfo struct {
	service          string
	incoming         bool
	opened           bool
	toPeer, fromPeer int64 // bytes reported
}

func newFowldEncoder(mailboxURL string) fowldEncoder {
	return fowldEncoder{url: mailboxURL, conns: map[int64]connInfo{}}
}

// bytesLines reports what a connection moved since last reported, given
// its counters now (counters older than those reported add nothing).
func (e *fowldEncoder) bytesLines(id, toPeer, fromPeer int64) []byte {
	c, ok := e.conns[id]
	if !ok {
		return nil
	}
	var out []byte
	// fowld's "in" is what comes in from the local socket.
	if toPeer > c.toPeer {
		out = append(out, pyObject{{"id", id}, {"bytes", toPeer - c.toPeer}, {"kind", "bytes-in"}}.line()...)
		c.toPeer = toPeer
	}
	if fromPeer > c.fromPeer {
		out = append(out, pyObject{{"id", id}, {"bytes", fromPeer - c.fromPeer}, {"kind", "bytes-out"}}.line()...)
		c.fromPeer = fromPeer
	}
	e.conns[id] = c
	return out
}

// encode returns the lines for ev (none for events fowld does not report:
// Dilation status, the peer's goodbye, refusals reported otherwise).
func (e *fowldEncoder) encode(ev session.Event) []byte {
	var out []byte
	add := func(o pyObject) { out = append(out, o.line()...) }
	switch ev := ev.(type) {
	case session.Welcome:
		welcome := pyObject{}
		if ev.MOTD != "" {
			welcome = append(welcome, pyField{"motd", ev.MOTD})
		}
		add(pyObject{{"url", e.url}, {"welcome", welcome}, {"kind", "welcome"}})
	case session.CodeReady:
		add(pyObject{{"code", ev.Code}, {"kind", "code-allocated"}})
	case session.PeerConnected:
		versions := ev.PeerVersions
		if len(versions) == 0 || string(versions) == "null" {
			versions = json.RawMessage("{}")
		}
		add(pyObject{{"verifier", hex.EncodeToString(ev.Verifier)}, {"versions", versions}, {"kind", "peer-connected"}})
	case session.ServiceListening:
		add(pyObject{{"name", ev.Service}, {"listening_port", addrPort(ev.Addr)}, {"kind", "listening"}})
	case session.AwaitingConnect:
		add(pyObject{{"name", ev.Service}, {"local_port", addrPort(ev.Addr)}, {"kind", "awaiting-connect"}})
	case session.ForwardRefused:
		// A refused offer comes again as OfferFailed, a refused
		// connection as ConnectionClosed: only the listen refusals are
		// reported here.
		if !ev.ByPeer && ev.Reason != forwardRefusal {
			add(pyObject{{"message", fmt.Sprintf("Failed to listen on \"%s\": %s", ev.Service, ev.Reason)}, {"kind", "error"}})
		}
	case session.OfferFailed:
		reason := ev.Err.Error()
		var denied *session.DeniedError
		if errors.As(ev.Err, &denied) {
			reason = denied.Reason
		}
		add(pyObject{{"message", fmt.Sprintf("Service \"%s\" failed: %s", ev.Service, reason)}, {"kind", "error"}})
	case session.TransferOffered:
		add(pyObject{{"id", ev.ID}, {"name", ev.Name}, {"directory", ev.Directory}, {"size", ev.Size},
			{"files", ev.Files}, {"save_dir", ev.SaveDir}, {"kind", "transfer-offered"}})
	case session.TransferProgress:
		add(pyObject{{"id", ev.ID}, {"name", ev.Name}, {"outgoing", ev.Outgoing}, {"bytes", ev.Done},
			{"size", ev.Size}, {"kind", "transfer-progress"}})
	case session.TransferFinished:
		o := pyObject{{"id", ev.ID}, {"name", ev.Name}, {"outgoing", ev.Outgoing}}
		if ev.Err != nil {
			o = append(o, pyField{"error", ev.Err.Error()})
		} else if !ev.Outgoing {
			o = append(o, pyField{"saved_as", ev.SavedAs})
		}
		add(append(o, pyField{"kind", "transfer-finished"}))
	case session.ConnectionOpened:
		e.conns[ev.ID] = connInfo{service: ev.Service, incoming: ev.Incoming, opened: true}
		kind := "outgoing-connection"
		if ev.Incoming {
			kind = "incoming-connection"
		}
		add(pyObject{{"service_name", ev.Service}, {"id", ev.ID}, {"kind", kind}})
	case session.ConnectionClosed:
		out = append(out, e.bytesLines(ev.ID, ev.BytesOut, ev.BytesIn)...)
		opened := e.conns[ev.ID].opened
		delete(e.conns, ev.ID)
		switch {
		case ev.Incoming && !opened:
			// Refused before it was opened: fowld reports the
			// connection, then its loss.
			add(pyObject{{"service_name", ev.Service}, {"id", ev.ID}, {"kind", "incoming-connection"}})
			add(pyObject{{"id", ev.ID}, {"reason", fmt.Sprintf("Incoming connection against local policy: {'unique-name': '%s'}", ev.Service)}, {"kind", "incoming-lost"}})
		case ev.Incoming && ev.Err != nil:
			add(pyObject{{"id", ev.ID}, {"reason", ev.Err.Error()}, {"kind", "incoming-lost"}})
		case ev.Incoming:
			add(pyObject{{"id", ev.ID}, {"kind", "incoming-done"}})
		default:
			if ev.Err != nil {
				// sic: fowld 26.8 passes the id as the service name
				// (OutgoingLost(channel_id, reason)), then reports the
				// subchannel's end as outgoing-done.
				add(pyObject{{"service_name", ev.ID}, {"reason", lostReason(ev.Err)}, {"kind", "outgoing-lost"}})
			}
			add(pyObject{{"service_name", ev.Service}, {"id", ev.ID}, {"kind", "outgoing-done"}})
		}
	case session.Traffic:
		for _, c := range ev.Connections {
			out = append(out, e.bytesLines(c.ID, c.BytesOut, c.BytesIn)...)
		}
	case session.ForwardProblem:
		add(pyObject{{"message", ev.Err.Error()}, {"kind", "error"}})
	case session.CommandFailed:
		add(pyObject{{"message", ev.Err.Error()}, {"kind", "error"}})
	case session.TransfersRefused:
		if ev.Unread {
			add(pyObject{{"message", fmt.Sprintf("Refused %d file offers unread: %s", ev.Count, ev.Reason)}, {"kind", "error"}})
		} else {
			add(pyObject{{"message", fmt.Sprintf("%d more file offers ended: %s", ev.Count, ev.Reason)}, {"kind", "error"}})
		}
	case session.ShareOffered:
		add(pyObject{{"outgoing", ev.Outgoing}, {"command", ev.Command}, {"kind", "share-offered"}})
	case session.ShareGuestJoined:
		add(pyObject{{"kind", "share-guest-joined"}})
	case session.ShareGuestLeft:
		add(withError(nil, ev.Err, "share-guest-left"))
	case session.ShareKeyboardRequested:
		add(pyObject{{"id", ev.ID}, {"kind", "share-keyboard-requested"}})
	case session.ShareTyping:
		add(pyObject{{"outgoing", ev.Outgoing}, {"allowed", ev.Allowed}, {"reason", ev.Reason}, {"kind", "share-typing"}})
	case session.ShareInputDropped:
		add(pyObject{{"bytes", ev.Bytes}, {"reason", ev.Reason}, {"kind", "share-input-dropped"}})
	case session.ShareEnded:
		add(withError(pyObject{{"outgoing", ev.Outgoing}}, ev.Err, "share-ended"))
	case session.Closed:
		add(pyObject{{"result", closedResult(ev.Err)}, {"kind", "closed"}})
	}
	return out
}

// closedResult is fowld's word for how the session closed: the mailbox
// mood, or what went wrong.
// withError is o, then "error" if err is set, then kind.
func withError(o pyObject, err error, kind string) pyObject {
	if err != nil {
		o = append(o, pyField{"error", err.Error()})
	}
	return append(o, pyField{"kind", kind})
}

func closedResult(err error) string {
	switch {
	case err == nil, errors.Is(err, session.ErrCloseTimeout):
		return "happy" // the peer missed our goodbye, but the mailbox closed happy
	case errors.Is(err, session.ErrLonely):
		return "lonely"
	}
	return err.Error()
}

// forwardRefusal is the reason gander (like fowl) gives a forwarded
// connection its policy refuses.
const forwardRefusal = "Against local policy"

func lostReason(err error) string {
	var denied *session.DeniedError
	if errors.As(err, &denied) {
		return denied.Reason
	}
	return err.Error()
}

// addrPort is the port of "host:port" (0 if there is none).
func addrPort(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

// pyObject is a JSON object whose keys keep their order, written as
// Python's json.dumps writes it. Values: string, int, int64, bool, nil,
// pyObject, json.RawMessage (re-formatted; invalid becomes {}).
type pyObject []pyField

type pyField struct {
	key   string
	value any
}

// line is the object and a newline.
func (o pyObject) line() []byte { return append(appendPy(nil, o), '\n') }

func appendPy(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendPyString(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case bool:
		return strconv.AppendBool(b, v)
	case nil:
		return append(b, "null"...)
	case pyObject:
		b = append(b, '{')
		for i, f := range v {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyString(b, f.key)
			b = append(b, ": "...)
			b = appendPy(b, f.value)
		}
		return append(b, '}')
	case json.RawMessage:
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		out, err := appendPyToken(b, dec)
		if err != nil {
			return append(b, "{}"...)
		}
		return out
	}
	panic(fmt.Sprintf("appendPy: %T", v))
}

// appendPyToken re-formats the next JSON value of dec.
func appendPyToken(b []byte, dec *json.Decoder) ([]byte, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		closing, sep := byte('}'), ": "
		if t == '[' {
			closing = ']'
		}
		b = append(b, byte(t))
		for i := 0; dec.More(); i++ {
			if i > 0 {
				b = append(b, ", "...)
			}
			if t == '{' {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				b = appendPyString(b, key.(string))
				b = append(b, sep...)
			}
			if b, err = appendPyToken(b, dec); err != nil {
				return nil, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return append(b, closing), nil
	case string:
		return appendPyString(b, t), nil
	case json.Number:
		return append(b, t...), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case nil:
		return append(b, "null"...), nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// appendPyString writes s as json.dumps does by default (ensure_ascii):
// printable ASCII as is, the usual short escapes, everything else as
// \uXXXX (surrogate pairs above the BMP). Invalid UTF-8 becomes \ufffd.
func appendPyString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	u := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\b':
			b = append(b, '\\', 'b')
		case r == '\f':
			b = append(b, '\\', 'f')
		case r >= 0x20 && r <= 0x7e:
			b = append(b, byte(r))
		case r > 0xffff:
			r -= 0x10000
			b = u(b, 0xd800+(r>>10))
			b = u(b, 0xdc00+(r&0x3ff))
		default:
			b = u(b, r)
		}
	}
	return append(b, '"')
}
