// Package mailboxtest is an in-process fake of the Magic Wormhole mailbox
// server, for unit tests only. It follows the reference server
// (magic-wormhole-mailbox-server 0.8.0, server_websocket.py and server.py):
// a welcome on open, an ack before every command, the same error strings,
// and nameplate and mailbox state kept in the Server rather than in the
// connection, so a client that reconnects finds its mailbox again. Every
// frame it sends is a text frame, as the reference's are.
//
// Deviations, all outside what a well-behaved client sends: allocate picks
// the lowest free nameplate rather than a random one (tests want to know
// it); a frame that is not a JSON object drops the connection; an invalid
// nameplate is answered with an error (the reference raises an exception it
// does not translate); nothing is ever pruned.
package mailboxtest

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Server is the fake mailbox server. Its methods are safe for concurrent use.
type Server struct {
	hs      *httptest.Server
	welcome map[string]any
	wg      sync.WaitGroup // connection handlers and writers

	mu          sync.Mutex
	apps        map[string]*app
	conns       map[*conn]bool
	down, shut  bool
	ignored     map[string]bool // command types acked but not acted on
	connections int
	refused     int
	moods       []string
	commands    []Command
}

// Command is one command the server received, in arrival order.
type Command struct {
	Side string // as bound on the connection; "" before bind
	Type string
}

// Option configures a Server.
type Option func(*Server)

// WithMOTD puts a message of the day in the welcome.
func WithMOTD(motd string) Option { return func(s *Server) { s.welcome["motd"] = motd } }

// WithWelcomeError makes the welcome refuse service.
func WithWelcomeError(msg string) Option { return func(s *Server) { s.welcome["error"] = msg } }

// WithCurrentCLIVersion advertises a CLI version in the welcome.
func WithCurrentCLIVersion(v string) Option {
	return func(s *Server) { s.welcome["current_cli_version"] = v }
}

// New starts a server that is shut down when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	s := &Server{welcome: map[string]any{}, apps: map[string]*app{}, conns: map[*conn]bool{}}
	for _, o := range opts {
		o(s)
	}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(func() {
		s.mu.Lock()
		s.shut = true
		s.mu.Unlock()
		s.DropConnections()
		s.hs.Close()
		s.wg.Wait()
	})
	return s
}

// URL is the websocket URL clients dial: ws://127.0.0.1:port/v1.
func (s *Server) URL() string { return "ws" + strings.TrimPrefix(s.hs.URL, "http") + "/v1" }

// DropConnections abruptly closes every live websocket, with no close
// handshake, as a network failure would. Server state is kept.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.ws.CloseNow()
	}
}

// SetDown makes the server refuse websocket upgrades (with 503) while down.
func (s *Server) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// Ignore makes the server ack commands of the given types and do nothing
// else with them, as a hung or hostile server would; Ignore() with no
// types makes it answer again.
func (s *Server) Ignore(types ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignored = map[string]bool{}
	for _, t := range types {
		s.ignored[t] = true
	}
}

// Inject sends raw as one text frame to every connected client, and says
// to how many.
func (s *Server) Inject(raw []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.enqueue(raw)
	}
	return len(s.conns)
}

// Moods are the moods of every close command received, in order.
func (s *Server) Moods() []string { s.mu.Lock(); defer s.mu.Unlock(); return slices.Clone(s.moods) }

// Commands are every command received, in order.
func (s *Server) Commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}

// Connections counts the websocket connections accepted so far.
func (s *Server) Connections() int { s.mu.Lock(); defer s.mu.Unlock(); return s.connections }

// Live counts the websocket connections open now.
func (s *Server) Live() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.conns) }

// Refused counts the upgrades refused while down.
func (s *Server) Refused() int { s.mu.Lock(); defer s.mu.Unlock(); return s.refused }

// Nameplates lists the nameplates that exist for appID, as list would.
func (s *Server) Nameplates(appID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.app(appID).nameplateIDs()
}

func (s *Server) app(id string) *app {
	if s.apps[id] == nil {
		s.apps[id] = &app{nameplates: map[string]*nameplate{}, mailboxes: map[string]*mailbox{}}
	}
	return s.apps[id]
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	if s.down {
		s.refused++
		s.mu.Unlock()
		w.Header().Set("Connection", "close")
		http.Error(w, "mailbox server is down", http.StatusServiceUnavailable)
		return
	}
	s.mu.Unlock()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(-1)
	c := &conn{s: s, ws: ws, out: make(chan []byte, 1024), done: make(chan struct{})}

	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		ws.CloseNow()
		return
	}
	s.conns[c] = true
	s.connections++
	s.wg.Add(1)
	welcome := map[string]any{"your-address": yourAddress(r.RemoteAddr)}
	for k, v := range s.welcome {
		welcome[k] = v
	}
	c.send("welcome", "welcome", welcome)
	s.mu.Unlock()

	go c.writeLoop()
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			break
		}
		s.mu.Lock()
		c.handle(data)
		s.mu.Unlock()
	}
	s.mu.Lock()
	delete(s.conns, c)
	if c.mailbox != nil {
		delete(c.mailbox.listeners, c)
	}
	s.mu.Unlock()
	close(c.done)
	ws.CloseNow()
}

func yourAddress(remote string) map[string]any {
	host, port, _ := net.SplitHostPort(remote)
	n, _ := strconv.Atoi(port)
	if strings.Contains(host, ":") {
		return map[string]any{"port": n, "ipv6": host}
	}
	return map[string]any{"port": n, "ipv4": host}
}

// conn is one websocket and the per-connection state of the reference's
// WebSocketServer. Everything but ws, out and done is guarded by s.mu.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	out  chan []byte // frames to write, in order
	done chan struct{}

	app                               *app
	side                              string
	didAllocate, didClaim, didRelease bool
	didClose                          bool
	nameplateID, mailboxID            string
	claimedNameplate, openedMailboxID bool
	mailbox                           *mailbox // opened and listening
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	for {
		select {
		case frame := <-c.out:
			if err := c.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
				c.ws.CloseNow()
			}
		case <-c.done:
			return
		}
	}
}

// enqueue queues one frame; a client too slow to drain 1024 is dropped.
func (c *conn) enqueue(frame []byte) {
	select {
	case c.out <- frame:
	default:
		c.ws.CloseNow()
	}
}

// send queues {"type": typ, "server_tx": now, key: value...}.
func (c *conn) send(typ string, kv ...any) {
	m := map[string]any{"type": typ, "server_tx": float64(time.Now().UnixNano()) / 1e9}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	data, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	c.enqueue(data)
}

func (c *conn) handle(data []byte) {
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(data, &msg); err != nil || msg == nil {
		c.ws.CloseNow()
		return
	}
	rawType, ok := msg["type"]
	if !ok {
		c.send("error", "error", "missing 'type'", "orig", json.RawMessage(data))
		return
	}
	id := msg["id"]
	if id == nil {
		id = json.RawMessage("null")
	}
	c.send("ack", "id", id)
	var typ string
	json.Unmarshal(rawType, &typ)
	c.s.commands = append(c.s.commands, Command{Side: c.side, Type: typ})
	if c.s.ignored[typ] {
		return
	}
	if e := c.dispatch(typ, msg); e != "" {
		c.send("error", "error", e, "orig", json.RawMessage(data))
	}
}

// str returns msg[key] if it is present and a JSON string.
func str(msg map[string]json.RawMessage, key string) (string, bool) {
	var v string
	raw, ok := msg[key]
	return v, ok && json.Unmarshal(raw, &v) == nil
}

// dispatch runs one command and returns the reference's error string, if any.
func (c *conn) dispatch(typ string, msg map[string]json.RawMessage) string {
	now := float64(time.Now().UnixNano()) / 1e9
	switch {
	case typ == "ping":
		if _, ok := msg["ping"]; !ok {
			return "ping requires 'ping'"
		}
		c.send("pong", "pong", msg["ping"])
	case typ == "bind":
		if c.app != nil {
			return "already bound"
		}
		appID, ok := str(msg, "appid")
		if !ok {
			return "bind requires 'appid'"
		}
		side, ok := str(msg, "side")
		if !ok {
			return "bind requires 'side'"
		}
		c.app, c.side = c.s.app(appID), side
	case c.app == nil:
		return "must bind first"
	case typ == "list":
		ids := []map[string]string{}
		for _, n := range c.app.nameplateIDs() {
			ids = append(ids, map[string]string{"id": n})
		}
		c.send("nameplates", "nameplates", ids)
	case typ == "allocate":
		if c.didAllocate {
			return "you already allocated one, don't be greedy"
		}
		n := 1
		for c.app.nameplates[strconv.Itoa(n)] != nil {
			n++
		}
		if _, e := c.app.claim(strconv.Itoa(n), c.side); e != "" {
			return e
		}
		c.didAllocate = true
		c.send("allocated", "nameplate", strconv.Itoa(n))
	case typ == "claim":
		name, ok := str(msg, "nameplate")
		if !ok {
			return "claim requires 'nameplate'"
		}
		if c.didClaim {
			return "only one claim per connection"
		}
		c.didClaim, c.nameplateID, c.claimedNameplate = true, name, true
		mb, e := c.app.claim(name, c.side)
		if e != "" {
			return e
		}
		c.send("claimed", "mailbox", mb)
	case typ == "release":
		if c.didRelease {
			return "only one release per connection"
		}
		name, ok := str(msg, "nameplate")
		if ok && c.claimedNameplate && name != c.nameplateID {
			return "release and claim must use same nameplate"
		}
		if !ok {
			if !c.claimedNameplate {
				return "release without nameplate must follow claim"
			}
			name = c.nameplateID
		}
		c.didRelease = true
		c.app.release(name, c.side)
		c.send("released")
	case typ == "open":
		if c.mailbox != nil {
			return "only one open per connection"
		}
		id, ok := str(msg, "mailbox")
		if !ok {
			return "open requires 'mailbox'"
		}
		c.mailboxID, c.openedMailboxID = id, true
		mb, e := c.app.open(id, c.side)
		if e != "" {
			return e
		}
		c.mailbox = mb
		mb.listeners[c] = true
		for _, m := range mb.messages {
			c.sendMessage(m)
		}
	case typ == "add":
		if c.mailbox == nil {
			return "must open mailbox before adding"
		}
		if _, ok := msg["phase"]; !ok {
			return "missing 'phase'"
		}
		if _, ok := msg["body"]; !ok {
			return "missing 'body'"
		}
		m := message{side: c.side, phase: msg["phase"], body: msg["body"], id: msg["id"], rx: now}
		c.mailbox.messages = append(c.mailbox.messages, m)
		for l := range c.mailbox.listeners {
			l.sendMessage(m)
		}
	case typ == "close":
		if c.didClose {
			return "only one close per connection"
		}
		id, ok := str(msg, "mailbox")
		if ok && c.openedMailboxID && id != c.mailboxID {
			return "open and close must use same mailbox"
		}
		if !ok {
			if !c.openedMailboxID {
				return "close without mailbox must follow open"
			}
			id = c.mailboxID
		}
		if c.mailbox == nil {
			if _, e := c.app.open(id, c.side); e != "" {
				return e
			}
		} else {
			delete(c.mailbox.listeners, c)
		}
		mood, _ := str(msg, "mood")
		c.s.moods = append(c.s.moods, mood)
		c.didClose, c.mailbox = true, nil
		c.app.close(id, c.side)
		c.send("closed")
	default:
		return "unknown type"
	}
	return ""
}

func (c *conn) sendMessage(m message) {
	id := m.id
	if id == nil {
		id = json.RawMessage("null")
	}
	c.send("message", "side", m.side, "phase", m.phase, "body", m.body, "server_rx", m.rx, "id", id)
}

// app is one app id's namespace: the reference's AppNamespace and tables.
type app struct {
	nameplates map[string]*nameplate
	mailboxes  map[string]*mailbox
}

type nameplate struct {
	mailbox string
	claimed map[string]bool // side → still claimed (false once released)
}

type mailbox struct {
	opened    map[string]bool // side → still open (false once closed)
	messages  []message
	listeners map[*conn]bool
}

// message is one stored add; phase, body and id are kept as sent.
type message struct {
	side            string
	phase, body, id json.RawMessage
	rx              float64
}

var nameplateRE = regexp.MustCompile(`^\d+$`)

func (a *app) nameplateIDs() []string {
	ids := []string{}
	for n := range a.nameplates {
		ids = append(ids, n)
	}
	slices.Sort(ids)
	return ids
}

func (a *app) claim(name, side string) (string, string) {
	if len(name) > 40 || !nameplateRE.MatchString(name) {
		return "", "invalid nameplate " + strconv.Quote(name)
	}
	np := a.nameplates[name]
	if np == nil {
		var b [8]byte
		rand.Read(b[:])
		id := strings.ToLower(strings.TrimRight(base32.StdEncoding.EncodeToString(b[:]), "="))
		np = &nameplate{mailbox: id, claimed: map[string]bool{}}
		a.nameplates[name] = np
	}
	if claimed, ok := np.claimed[side]; !ok {
		np.claimed[side] = true
	} else if !claimed {
		return "", "reclaimed"
	}
	if _, e := a.open(np.mailbox, side); e != "" {
		return "", e
	}
	if len(np.claimed) > 2 {
		return "", "crowded"
	}
	return np.mailbox, ""
}

func (a *app) release(name, side string) {
	np := a.nameplates[name]
	if np == nil {
		return
	}
	if _, ok := np.claimed[side]; !ok {
		return
	}
	np.claimed[side] = false
	for _, claimed := range np.claimed {
		if claimed {
			return
		}
	}
	delete(a.nameplates, name)
}

func (a *app) open(id, side string) (*mailbox, string) {
	mb := a.mailboxes[id]
	if mb == nil {
		mb = &mailbox{opened: map[string]bool{}, listeners: map[*conn]bool{}}
		a.mailboxes[id] = mb
	}
	if _, ok := mb.opened[side]; !ok {
		mb.opened[side] = true
	}
	if len(mb.opened) > 2 {
		return nil, "crowded"
	}
	return mb, ""
}

// close marks side closed; when no side is left open the mailbox, its
// messages and any nameplate pointing at it are deleted.
func (a *app) close(id, side string) {
	mb := a.mailboxes[id]
	if mb == nil {
		return
	}
	if _, ok := mb.opened[side]; !ok {
		return
	}
	mb.opened[side] = false
	for _, open := range mb.opened {
		if open {
			return
		}
	}
	for name, np := range a.nameplates {
		if np.mailbox == id {
			delete(a.nameplates, name)
		}
	}
	delete(a.mailboxes, id)
	mb.listeners = map[*conn]bool{}
}
