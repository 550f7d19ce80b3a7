package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// MessageConn carries tty-share messages between a host and one guest.
// ReadMessage and WriteMessage may be called from two goroutines at
// once; Close ends both.
type MessageConn interface {
	ReadMessage(ctx context.Context) (Message, error)
	WriteMessage(ctx context.Context, m Message) error
	Close() error
}

// tty-share's paths and headers. "local" is the session name tty-share
// serves when it runs without its public proxy, which is what shwim
// uses.
const (
	sessionPath      = "/s/local/"
	wsPath           = sessionPath + "ws/"
	headerVersion    = "TTYSHARE-VERSION"
	headerTTYWSPath  = "TTYSHARE-TTY-WSPATH"
	headerOldWSPath  = "TTYSHARE-WSPATH" // what tty-share 2.4's client reads
	protocolVersion  = "2"
	maxWSPathLength  = 256
	maxPageBytes     = 64 << 10
	handshakeTimeout = 10 * time.Second
)

// wsConn is a MessageConn over a websocket.
type wsConn struct{ c *websocket.Conn }

func newWSConn(c *websocket.Conn) *wsConn {
	c.SetReadLimit(MaxMessageBytes)
	return &wsConn{c: c}
}

func (w *wsConn) ReadMessage(ctx context.Context) (Message, error) {
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			return nil, err
		}
		m, err := Decode(b)
		if err != nil {
			w.c.Close(websocket.StatusUnsupportedData, "bad message")
			return nil, err
		}
		if m != nil {
			return m, nil
		}
	}
}

func (w *wsConn) WriteMessage(ctx context.Context, m Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	return w.c.Write(ctx, websocket.MessageText, b)
}

func (w *wsConn) Close() error { return w.c.Close(websocket.StatusNormalClosure, "") }

// Handler serves h as tty-share does, for tty-share's client (and so
// shwim's guest) and for Dial: the page at /s/local/ names the websocket
// at /s/local/ws/. Each websocket is one guest, attached until it
// leaves.
func Handler(h *Host) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(sessionPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != sessionPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(headerVersion, protocolVersion)
		w.Header().Set(headerOldWSPath, wsPath)
		w.Header().Set(headerTTYWSPath, wsPath)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "gander shares a terminal here; join it with tty-share or gander join.\n")
	})
	mux.HandleFunc(wsPath, func(w http.ResponseWriter, r *http.Request) {
		release, err := h.reserveGuest()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer release()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered
		}
		h.Attach(r.Context(), newWSConn(c))
	})
	return mux
}

// ErrNotTTYShare: the server at a guest's URL does not speak tty-share.
var ErrNotTTYShare = errors.New("terminal: not a tty-share server")

// Dial joins the tty-share host at pageURL (http://HOST:PORT/s/local/):
// it reads the page's headers for the websocket's path and opens it.
func Dial(ctx context.Context, pageURL string) (MessageConn, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	page, err := url.Parse(pageURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pageURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxPageBytes))
	resp.Body.Close()
	path := resp.Header.Get(headerTTYWSPath)
	if path == "" {
		path = resp.Header.Get(headerOldWSPath)
	}
	if resp.StatusCode != http.StatusOK || !validWSPath(path) {
		return nil, fmt.Errorf("%w: %s answered %s with websocket path %q", ErrNotTTYShare, pageURL, resp.Status, path)
	}
	scheme := "ws"
	if page.Scheme == "https" {
		scheme = "wss"
	}
	c, _, err := websocket.Dial(ctx, scheme+"://"+page.Host+path, nil)
	if err != nil {
		return nil, err
	}
	return newWSConn(c), nil
}

// validWSPath: an absolute path of printable ASCII, not a URL that could
// send us elsewhere.
func validWSPath(p string) bool {
	if len(p) == 0 || len(p) > maxWSPathLength || p[0] != '/' || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f {
			return false
		}
	}
	return true
}
