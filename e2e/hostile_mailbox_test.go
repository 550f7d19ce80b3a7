package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gander-pair/gander/forwards"
)

// A stranger needs no code to reach gander's mailbox: it lists the
// nameplates on the real mailbox server, claims the one gander allocated,
// and adds 1 MiB messages without a pake. gander must hold none of it, stop
// at the first message (an honest peer starts with its pake) and tell the
// person the code is spoiled.
//
// GANDER_E2E_STRANGER_MIB sets how much the stranger sends (default 64);
// GANDER_E2E_GANDER_BIN runs another gander binary (an older build, to
// measure it: that one never stops, so the test fails, logging its RSS).
func TestStrangerFloodsMailbox(t *testing.T) {
	mailbox := startMailbox(t)
	bin := os.Getenv("GANDER_E2E_GANDER_BIN")
	if bin == "" {
		bin = ganderBin(t)
	}
	totalMiB := 64
	if s := os.Getenv("GANDER_E2E_STRANGER_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("GANDER_E2E_STRANGER_MIB=%q: want a positive number", s)
		}
		totalMiB = n
	}
	g := startProcess(t, scratch, bin, "--mailbox", mailbox.URL, "--relay", "tcp:127.0.0.1:1", "--local", "web")
	ganderPeakRSS := watchPeakRSS(g)
	code := g.waitFor(t, ganderCode, 30*time.Second)[1]
	nameplate, _, _ := strings.Cut(code, "-")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := dialStranger(t, ctx, mailbox.URL)
	s.send(t, map[string]any{"type": "bind", "appid": forwards.AppID, "side": "57a4a9e500"})
	s.send(t, map[string]any{"type": "list"})
	listed := s.await(t, "nameplates")
	var list struct {
		Nameplates []struct{ ID string } `json:"nameplates"`
	}
	json.Unmarshal(listed, &list)
	if !slices.ContainsFunc(list.Nameplates, func(n struct{ ID string }) bool { return n.ID == nameplate }) {
		t.Fatalf("the server lists %s; gander's nameplate %s is not among them", listed, nameplate)
	}
	s.send(t, map[string]any{"type": "claim", "nameplate": nameplate})
	var claimed struct{ Mailbox string }
	json.Unmarshal(s.await(t, "claimed"), &claimed)
	s.send(t, map[string]any{"type": "open", "mailbox": claimed.Mailbox})
	go s.discard(ctx) // the server echoes our own adds back

	body := hex.EncodeToString(make([]byte, 1<<20))
	sent := 0
	for ; sent < totalMiB && !g.exited(); sent++ {
		s.send(t, map[string]any{"type": "add", "phase": strconv.Itoa(sent), "body": body})
	}
	t.Logf("the stranger sent %d MiB", sent)

	spoiled := regexp.MustCompile(`someone else used nameplate ` + nameplate + ` before your peer: this code is spoiled; start again with a new code`)
	if _, err := g.match(spoiled, 30*time.Second); err != nil {
		t.Logf("gander's peak RSS: %d MiB (VmHWM) after %d MiB from the stranger", ganderPeakRSS()>>20, sent)
		t.Fatal(err)
	}
	if exit := g.wait(t, 30*time.Second); exit == nil {
		t.Error("gander exited with status 0 on a spoiled code")
	}
	peak := ganderPeakRSS()
	t.Logf("gander's peak RSS: %d MiB (VmHWM) after %d MiB from the stranger", peak>>20, sent)
	const bound = 150 << 20
	if peak > bound {
		t.Errorf("gander's peak RSS %d MiB is over %d MiB", peak>>20, bound>>20)
	}
}

// A hostile mailbox server is no better placed than a stranger: it
// allocates, confirms the claim, then relays 1 MiB messages from a made-up
// side. gander must stop at the first and say the code is spoiled.
func TestHostileMailboxServerFloods(t *testing.T) {
	venvBin(t, "twist") // only under ./e2e/test.sh, like every e2e test
	bin := os.Getenv("GANDER_E2E_GANDER_BIN")
	if bin == "" {
		bin = ganderBin(t)
	}
	totalMiB := 64
	if s := os.Getenv("GANDER_E2E_STRANGER_MIB"); s != "" {
		totalMiB, _ = strconv.Atoi(s)
	}
	sent := make(chan int, 1)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		conn.SetReadLimit(-1)
		ctx := r.Context()
		write := func(msg map[string]any) error {
			data, _ := json.Marshal(msg)
			return conn.Write(ctx, websocket.MessageText, data)
		}
		write(map[string]any{"type": "welcome", "welcome": map[string]any{}})
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var cmd struct{ Type string }
			json.Unmarshal(data, &cmd)
			switch cmd.Type {
			case "allocate":
				write(map[string]any{"type": "allocated", "nameplate": "7"})
			case "claim":
				write(map[string]any{"type": "claimed", "mailbox": "hostile"})
			case "open":
				body := hex.EncodeToString(make([]byte, 1<<20))
				n := 0
				for ; n < totalMiB; n++ {
					if write(map[string]any{"type": "message", "side": "0ff1ce0000", "phase": strconv.Itoa(n), "body": body}) != nil {
						break
					}
				}
				sent <- n
				return
			}
		}
	}))
	t.Cleanup(server.Close)
	sentMiB := func() int {
		select {
		case n := <-sent:
			return n
		case <-time.After(30 * time.Second):
			return -1
		}
	}
	url := "ws" + strings.TrimPrefix(server.URL, "http") + "/v1"
	g := startProcess(t, scratch, bin, "--mailbox", url, "--relay", "tcp:127.0.0.1:1", "--local", "web")
	ganderPeakRSS := watchPeakRSS(g)
	spoiled := regexp.MustCompile(`someone else used nameplate 7 before your peer: this code is spoiled; start again with a new code`)
	if _, err := g.match(spoiled, time.Minute); err != nil {
		t.Logf("gander's peak RSS: %d MiB (VmHWM) after %d MiB from the server", ganderPeakRSS()>>20, sentMiB())
		t.Fatal(err)
	}
	if exit := g.wait(t, 30*time.Second); exit == nil {
		t.Error("gander exited with status 0 on a spoiled code")
	}
	peak := ganderPeakRSS()
	t.Logf("gander's peak RSS: %d MiB (VmHWM) after %d MiB from the server", peak>>20, sentMiB())
	const bound = 150 << 20
	if peak > bound {
		t.Errorf("gander's peak RSS %d MiB is over %d MiB", peak>>20, bound>>20)
	}
}

// watchPeakRSS samples the process's VmHWM until it exits and returns
// the highest seen so far. Not ru_maxrss: Go starts a child with vfork,
// so the child's ru_maxrss counts the test binary's own memory at exec.
func watchPeakRSS(p *process) func() int64 {
	var peak atomic.Int64
	read := func() {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			return
		}
		if m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(status); m != nil {
			kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
			if kb<<10 > peak.Load() {
				peak.Store(kb << 10)
			}
		}
	}
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				read()
			}
		}
	}()
	return func() int64 {
		if !p.exited() {
			read()
		}
		return peak.Load()
	}
}

// rawStranger speaks the mailbox protocol over a bare websocket, sending
// whatever it likes.
type rawStranger struct {
	ctx  context.Context
	conn *websocket.Conn
}

func dialStranger(t *testing.T, ctx context.Context, url string) *rawStranger {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(-1)
	t.Cleanup(func() { conn.CloseNow() })
	s := &rawStranger{ctx: ctx, conn: conn}
	s.await(t, "welcome")
	return s
}

func (s *rawStranger) send(t *testing.T, msg map[string]any) {
	t.Helper()
	data, _ := json.Marshal(msg)
	if err := s.conn.Write(s.ctx, websocket.MessageText, data); err != nil {
		t.Fatalf("stranger: %v", err)
	}
}

// await reads until a message of type typ, and returns it.
func (s *rawStranger) await(t *testing.T, typ string) []byte {
	t.Helper()
	for {
		_, data, err := s.conn.Read(s.ctx)
		if err != nil {
			t.Fatalf("stranger waiting for %s: %v", typ, err)
		}
		var m struct{ Type string }
		json.Unmarshal(data, &m)
		if m.Type == typ {
			return data
		}
		if m.Type == "error" {
			t.Fatalf("stranger waiting for %s: %s", typ, data)
		}
	}
}

func (s *rawStranger) discard(ctx context.Context) {
	for {
		if _, _, err := s.conn.Read(ctx); err != nil {
			return
		}
	}
}
