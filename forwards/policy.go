package forwards

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
)

// Decision answers a peer's request.
type Decision int

const (
	Deny Decision = iota
	AllowOnce
	AllowAlways
)

func (d Decision) String() string {
	return [...]string{"deny", "allow once", "allow always"}[d]
}

// ListenRequest is the peer asking us to listen for a service we did not
// configure with --local.
type ListenRequest struct {
	Service string
	// Port is the port the peer asked for; 0 means any.
	Port int
}

// Grant is the local user's answer to a ListenRequest: the decision and,
// when it allows, the port to listen on (0: any free one), which the user
// chose in the dialog (it starts as the port the peer asked for).
type Grant struct {
	Decision Decision
	Port     int
}

// Asker asks the local user about a request (the TUI shows a dialog). It
// may block until answered or ctx ends, which counts as Deny. A Deny may
// say why (the peer is told); nil keeps fowl's reason, and
// ErrRefusedByUser adds that a person refused.
type Asker func(ctx context.Context, req ListenRequest) (Grant, error)

// ErrRefusedByUser is the Asker's reason when the user answered no: the
// peer is told fowl's reason with "(refused by the user)" after it, so
// that a gander peer can say a person refused (RefusedByUser) and a fowl
// peer reads what it always did, first.
var ErrRefusedByUser = errors.New("refused by the user")

// refusedByUserSuffix ends the reason of a user's refusal.
const refusedByUserSuffix = " (refused by the user)"

// NotPermittedPrefix starts fowl's reason for a name nothing allows
// (its --local lists it not), and gander's.
const NotPermittedPrefix = "No service permitted for name: "

// RefusedByUser says whether a peer's reason is a person's refusal (a
// gander peer's user answered no); NotPermitted whether it is its rules'
// (nothing there allows the name).
func RefusedByUser(reason string) bool {
	return strings.HasPrefix(reason, NotPermittedPrefix) && strings.HasSuffix(reason, refusedByUserSuffix)
}

// NotPermitted: see RefusedByUser.
func NotPermitted(reason string) bool {
	return strings.HasPrefix(reason, NotPermittedPrefix) && !RefusedByUser(reason)
}

// PortMismatch reads fowl's reason for a request on another port than
// the one the peer's user gave: the port asked for and the one it takes.
func PortMismatch(reason string) (asked, takes int, ok bool) {
	n, err := fmt.Sscanf(reason, "Desired port %d does not match %d", &asked, &takes)
	return asked, takes, err == nil && n == 2
}

// DeniedError is a request the policy refused; Reason is what the peer is
// told.
type DeniedError struct {
	Service string
	Reason  string
}

func (e *DeniedError) Error() string { return e.Reason }

// Policy decides every peer request. Nothing is allowed unless configured:
// the services we accept (--local) may be listened for, the services we
// offer (--remote) may be connected to, and other listen requests go to
// the Asker, if there is one. Connections are only ever made to an
// offered service's own address and port: the peer never chooses them.
type Policy struct {
	mu      sync.Mutex
	locals  map[string]Local
	remotes map[string]Remote
	// allowed are name patterns (path.Match) the peer may make us listen
	// for without asking: --allow-listen.
	allowed []string
	// granted are the locals the user allowed always in the dialog: the
	// port they chose is used whatever port the peer asks for.
	granted map[string]bool
	ask     Asker
}

// NewPolicy returns a policy that allows the given services and asks ask
// (nil: deny) about anything else the peer wants us to listen for.
func NewPolicy(ask Asker) *Policy {
	return &Policy{locals: map[string]Local{}, remotes: map[string]Remote{}, granted: map[string]bool{}, ask: ask}
}

// AddLocal allows the peer to make us listen for l.Name.
func (p *Policy) AddLocal(l Local) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.locals[l.Name] = l
}

// AllowListen lets the peer make us listen, on loopback, for any service
// whose name matches pattern (path.Match syntax: "dev-*", "*"). A bad
// pattern is an error.
func (p *Policy) AllowListen(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("bad --allow-listen pattern %q: %w", pattern, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed = append(p.allowed, pattern)
	return nil
}

func (p *Policy) allowedLocked(name string) bool {
	for _, pattern := range p.allowed {
		if ok, _ := path.Match(pattern, name); ok {
			return true
		}
	}
	return false
}

// AddRemote allows forwarded connections to r.Name's daemon.
func (p *Policy) AddRemote(r Remote) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remotes[r.Name] = r
}

// Remove forgets a service in both directions.
func (p *Policy) Remove(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.locals, name)
	delete(p.remotes, name)
	delete(p.granted, name)
}

// listen decides whether and where to listen for a peer's request. The
// port is the local user's choice, never the peer's alone:
//   - a port the user gave (--local NAME:PORT) is used; a request for
//     another port is refused, in fowl's words;
//   - a port the peer asked for is used if the user saw it in the dialog
//     (the Asker is shown it) and allowed the request, unless it is below
//     minPeerChosenPort: a privileged port is never shown nor used;
//   - otherwise (--local NAME, --allow-listen, no port asked) the port is
//     a random free one, whatever the peer asked for.
//
// fowl 26.8 differs: with no port of its own it listens on whatever port
// the peer asks for, privileged or not.
func (p *Policy) listen(ctx context.Context, name string, requested int) (Local, error) {
	p.mu.Lock()
	l, ok := p.locals[name]
	if !ok && p.allowedLocked(name) {
		l, ok = Local{Name: name, BindAddr: defaultAddress}, true
	}
	granted := p.granted[name]
	ask := p.ask
	p.mu.Unlock()
	if ok {
		if !granted && l.ListenPort != 0 && requested != 0 && requested != l.ListenPort {
			return Local{}, &DeniedError{Service: name, Reason: fmt.Sprintf("Desired port %d does not match %d", requested, l.ListenPort)}
		}
		return l, nil
	}
	// What the user is shown is what will be used.
	shown := requested
	if shown < minPeerChosenPort {
		shown = 0
	}
	grant, why := Grant{}, error(nil)
	if ask != nil {
		grant, why = ask(ctx, ListenRequest{Service: name, Port: shown})
	}
	if grant.Port < 0 || grant.Port > 65535 {
		grant.Decision = Deny
	}
	l = Local{Name: name, ListenPort: grant.Port, BindAddr: defaultAddress}
	switch grant.Decision {
	case AllowAlways:
		p.mu.Lock()
		p.locals[name], p.granted[name] = l, true
		p.mu.Unlock()
	case AllowOnce:
	default:
		reason := NotPermittedPrefix + name
		switch {
		case errors.Is(why, ErrRefusedByUser):
			reason += refusedByUserSuffix
		case why != nil:
			reason = why.Error()
		}
		return Local{}, &DeniedError{Service: name, Reason: reason}
	}
	return l, nil
}

// connect returns the daemon a forwarded connection for name goes to.
func (p *Policy) connect(name string) (Remote, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.remotes[name]
	if !ok {
		return Remote{}, &DeniedError{Service: name, Reason: "Against local policy"}
	}
	return r, nil
}
