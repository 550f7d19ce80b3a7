package mailbox

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"unicode/utf8"
)

// maxReasonLength bounds an unrecognised error's own text in Reason: it
// is shown to a person, and may quote what the network said.
const maxReasonLength = 80

// Reason says in a few words why connecting to the server failed ("connection
// refused", "no such host", "timed out"), for a person: the dialer's own
// text nests the URL, the HTTP request and the socket call. Errors of no
// known kind give their innermost text, cut short.
func Reason(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host: " + short(dnsErr.Name)
		}
		return "the name " + short(dnsErr.Name) + " could not be looked up"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was dropped"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return "no answer: timed out"
	case strings.Contains(err.Error(), "expected handshake response status code"):
		// coder/websocket's words for an HTTP answer that is no upgrade.
		return "something answered there, but not as a mailbox server"
	}
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			break
		}
		err = inner
	}
	return short(err.Error())
}

func short(s string) string {
	if len(s) <= maxReasonLength {
		return s
	}
	cut := maxReasonLength
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
