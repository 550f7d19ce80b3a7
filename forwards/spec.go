package forwards

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Local is fowl's --local NAME[:PORT][:bind=ADDR][:remote-connect=PORT]:
// the peer may ask us to listen for service Name; each connection to that
// listener is forwarded to the peer, which runs the service.
type Local struct {
	Name string
	// ListenPort is our listening port; 0 takes the peer's requested
	// port, or a random one.
	ListenPort int
	// BindAddr is the interface to listen on; 127.0.0.1 unless the user
	// explicitly says otherwise.
	BindAddr string
	// RemoteConnectPort, if set, is the port the peer's daemon must use.
	RemoteConnectPort int
}

// Remote is fowl's --remote NAME[:PORT][:listen=PORT][:address=ADDR]: the
// daemon for service Name runs here at Address:ConnectPort, and we ask the
// peer to listen for it.
type Remote struct {
	Name string
	// ConnectPort is the daemon's port; 0 picks a free one to report.
	ConnectPort int
	// ListenPort is the port we ask the peer to listen on; 0 lets it pick.
	ListenPort int
	// Address is where the daemon listens; 127.0.0.1 by default.
	Address string
}

const defaultAddress = "127.0.0.1"

// SpecError says what is wrong with a --local or --remote specification.
type SpecError struct {
	Spec, Reason string
}

func (e *SpecError) Error() string { return fmt.Sprintf("bad forward %q: %s", e.Spec, e.Reason) }

// ParseLocal parses a --local specification.
func ParseLocal(spec string) (Local, error) {
	l := Local{BindAddr: defaultAddress}
	err := parseSpec(spec, &l.Name, &l.ListenPort, map[string]func(string) error{
		"bind":           func(v string) error { return parseAddr(v, &l.BindAddr) },
		"remote-connect": func(v string) error { return parsePort(v, &l.RemoteConnectPort) },
	})
	return l, err
}

// ParseRemote parses a --remote specification.
func ParseRemote(spec string) (Remote, error) {
	r := Remote{Address: defaultAddress}
	err := parseSpec(spec, &r.Name, &r.ConnectPort, map[string]func(string) error{
		"listen":  func(v string) error { return parsePort(v, &r.ListenPort) },
		"address": func(v string) error { return parseAddr(v, &r.Address) },
	})
	return r, err
}

// parseSpec reads NAME[:PORT][:key=value...] with at most one of each key.
func parseSpec(spec string, name *string, port *int, keys map[string]func(string) error) error {
	fail := func(format string, args ...any) error {
		return &SpecError{Spec: spec, Reason: fmt.Sprintf(format, args...)}
	}
	parts := strings.Split(spec, ":")
	*name = parts[0]
	if err := validName(*name); err != nil {
		return fail("%v", err)
	}
	seen := map[string]bool{}
	for i, part := range parts[1:] {
		key, value, isKey := strings.Cut(part, "=")
		if !isKey {
			if i != 0 {
				return fail("the port must come right after the name")
			}
			if err := parsePort(part, port); err != nil {
				return fail("%v", err)
			}
			continue
		}
		set, ok := keys[key]
		if !ok {
			return fail("unknown option %q (want %s)", key, strings.Join(slices.Sorted(maps.Keys(keys)), " or "))
		}
		if seen[key] {
			return fail("%s given twice", key)
		}
		seen[key] = true
		if err := set(value); err != nil {
			return fail("%s: %v", key, err)
		}
	}
	return nil
}

func validName(name string) error {
	if name == "" {
		return fmt.Errorf("a service name is required")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '=' {
			return fmt.Errorf("the service name contains %q", r)
		}
	}
	return nil
}

// checkPeerName checks a service name the peer sent: the peer may not
// send names the local user could not type (control characters, C1's
// too, and "="), nor invisible or reordering characters (Unicode format
// characters such as U+202E), nor more than maxServiceNameBytes.
func checkPeerName(name string) error {
	switch {
	case len(name) > maxServiceNameBytes:
		return fmt.Errorf("a service name of %d bytes is longer than %d", len(name), maxServiceNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("the service name is not UTF-8")
	}
	if err := validName(name); err != nil {
		return err
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return fmt.Errorf("the service name contains %U", r)
	}
	return nil
}

// printableName is name as reported when it was refused: quoted, escaped
// and cut short.
func printableName(name string) string {
	const shown = 64
	if len(name) > shown {
		return strconv.QuoteToASCII(strings.ToValidUTF8(name[:shown], "")) + "…"
	}
	return strconv.QuoteToASCII(name)
}

// peerText is text from the peer's frames (the reason in a refusal) made
// fit to show and log: at most maxPeerReasonBytes of valid UTF-8, cut at a
// character with "…", with line breaks as spaces and other control and
// format characters (escapes, bidi overrides) as U+FFFD. It reads no more
// of s than it keeps.
func peerText(s string) string {
	const ellipsis = "…"
	var b strings.Builder
	fits := 0 // the longest prefix of b that leaves room for the ellipsis
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || unicode.In(r, unicode.Zl, unicode.Zp):
			r = ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > maxPeerReasonBytes {
			return b.String()[:fits] + ellipsis
		}
		b.WriteRune(r)
		if b.Len() <= maxPeerReasonBytes-len(ellipsis) {
			fits = b.Len()
		}
	}
	return b.String()
}

func parsePort(s string, port *int) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	*port = n
	return nil
}

func parseAddr(s string, addr *string) error {
	if s == "localhost" {
		*addr = defaultAddress
		return nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("%q is not an IPv4 address", s)
	}
	*addr = ip.String()
	return nil
}
