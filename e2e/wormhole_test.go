package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// The classic text exchange, between gander and the Python `wormhole` CLI
// (magic-wormhole 0.24) through the real mailbox server.

var codeLine = regexp.MustCompile(`Wormhole code is: (\S+)`)

const exchangeTimeout = 60 * time.Second

// sender starts a text send and returns it with the code it announced.
type sender func(t *testing.T, mailbox, text, code string) (*process, string)

// receiver runs a receive to completion and returns its process.
type receiver func(t *testing.T, mailbox, code string) *process

func ganderSend(t *testing.T, mailbox, text, code string) (*process, string) {
	args := []string{"send", "--mailbox", mailbox, "--text", text}
	if code != "" {
		args = append(args, "--code", code)
	}
	p := startProcess(t, scratch, ganderBin(t), args...)
	return p, p.waitFor(t, codeLine, exchangeTimeout)[1]
}

func pythonSend(t *testing.T, mailbox, text, code string) (*process, string) {
	args := []string{"--relay-url", mailbox, "send", "--text", text}
	if code != "" {
		args = append(args, "--code", code)
	}
	p := startProcess(t, scratch, venvBin(t, "wormhole"), args...)
	return p, p.waitFor(t, codeLine, exchangeTimeout)[1]
}

func ganderReceive(t *testing.T, mailbox, code string) *process {
	return startProcess(t, scratch, ganderBin(t), "receive", "--mailbox", mailbox, code)
}

func pythonReceive(t *testing.T, mailbox, code string) *process {
	return startProcess(t, scratch, venvBin(t, "wormhole"), "--relay-url", mailbox, "receive", code)
}

func TestTextExchange(t *testing.T) {
	mailbox := startMailbox(t)
	const text = "héllo from the other side ✓"
	tests := []struct {
		name    string
		send    sender
		receive receiver
		code    string // "" allocates one
	}{
		{"gander to python, allocated code", ganderSend, pythonReceive, ""},
		{"gander to python, typed code", ganderSend, pythonReceive, "7-guitarist-revenge"},
		{"python to gander, allocated code", pythonSend, ganderReceive, ""},
		{"python to gander, typed code", pythonSend, ganderReceive, "8-crossover-aztec"},
		{"gander to gander, allocated code", ganderSend, ganderReceive, ""},
		{"gander to gander, 4-word code", ganderSend, ganderReceive, "9-absurd-adviser-accrue-aftermath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sendProc, code := tt.send(t, mailbox.URL, text, tt.code)
			if tt.code != "" && code != tt.code {
				t.Fatalf("sender announced %q, want %q", code, tt.code)
			}
			recvProc := tt.receive(t, mailbox.URL, code)
			if err := recvProc.wait(t, exchangeTimeout); err != nil {
				t.Fatalf("receiver failed: %v\n%s", err, recvProc.output())
			}
			if got := strings.TrimRight(recvProc.stdoutText(), "\n"); got != text {
				t.Fatalf("receiver printed %q, want %q", got, text)
			}
			if err := sendProc.wait(t, exchangeTimeout); err != nil {
				t.Fatalf("sender failed: %v\n%s", err, sendProc.output())
			}
		})
	}
}

// A wrong code must fail on both sides, quickly, with a wrong-code error:
// never a hang.
func TestWrongCodeFailsBothSides(t *testing.T) {
	mailbox := startMailbox(t)
	wrongPassword := regexp.MustCompile(`(?i)wrong code|key confirmation failed`)
	tests := []struct {
		name    string
		send    sender
		receive receiver
	}{
		{"gander sends, python mistypes", ganderSend, pythonReceive},
		{"python sends, gander mistypes", pythonSend, ganderReceive},
		{"gander to gander", ganderSend, ganderReceive},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nameplate := []string{"21", "22", "23"}[i]
			sendProc, code := tt.send(t, mailbox.URL, "secret", nameplate+"-guitarist-revenge")
			start := time.Now()
			recvProc := tt.receive(t, mailbox.URL, nameplate+"-guitarist-revenue")
			for _, p := range []*process{recvProc, sendProc} {
				if err := p.wait(t, 20*time.Second); err == nil {
					t.Fatalf("%s succeeded with a wrong code:\n%s", p.name, p.output())
				}
				if !wrongPassword.MatchString(p.stderrText()) {
					t.Fatalf("%s did not report a wrong code:\n%s", p.name, p.output())
				}
			}
			t.Logf("both sides failed %v after the receiver started (code %s)", time.Since(start).Round(time.Millisecond), code)
		})
	}
}

// The mailbox connection drops while the sender waits for its peer: the
// sender reconnects, replays its state, and the exchange still completes.
func TestMailboxConnectionCutMidExchange(t *testing.T) {
	t.Run("server restarted", func(t *testing.T) {
		mailbox := startMailbox(t)
		sendProc, code := ganderSend(t, mailbox.URL, "survived a restart", "")
		mailbox.Restart(t)
		recvProc := pythonReceive(t, mailbox.URL, code)
		if err := recvProc.wait(t, exchangeTimeout); err != nil {
			t.Fatalf("receiver failed: %v", err)
		}
		if got := strings.TrimSpace(recvProc.stdoutText()); got != "survived a restart" {
			t.Fatalf("receiver printed %q", got)
		}
		if err := sendProc.wait(t, exchangeTimeout); err != nil {
			t.Fatalf("sender failed: %v", err)
		}
	})
	t.Run("websocket cut by a proxy, twice", func(t *testing.T) {
		mailbox := startMailbox(t)
		proxy := startProxy(t, strings.TrimSuffix(strings.TrimPrefix(mailbox.URL, "ws://"), "/v1"))
		proxied := "ws://" + proxy.Addr + "/v1"
		recvProc := startProcess(t, scratch, ganderBin(t), "receive", "--mailbox", proxied, "31-guitarist-revenge")
		// The receiver has claimed the nameplate and sent its pake when
		// the connection drops, and again before the sender arrives.
		deadline := time.Now().Add(20 * time.Second)
		for proxy.Accepted() < 1 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		proxy.Cut()
		for proxy.Accepted() < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		proxy.Cut()
		sendProc, _ := pythonSend(t, mailbox.URL, "survived two cuts", "31-guitarist-revenge")
		if err := recvProc.wait(t, exchangeTimeout); err != nil {
			t.Fatalf("receiver failed: %v", err)
		}
		if got := strings.TrimSpace(recvProc.stdoutText()); got != "survived two cuts" {
			t.Fatalf("receiver printed %q", got)
		}
		if err := sendProc.wait(t, exchangeTimeout); err != nil {
			t.Fatalf("sender failed: %v", err)
		}
		if proxy.Accepted() < 3 {
			t.Fatalf("the receiver connected %d times, want at least 3", proxy.Accepted())
		}
	})
}

func TestServerWelcome(t *testing.T) {
	t.Run("motd is shown, sanitised", func(t *testing.T) {
		mailbox := startMailbox(t, "--motd=be nice \x1b[31mred")
		p, _ := ganderSend(t, mailbox.URL, "x", "")
		p.waitFor(t, regexp.MustCompile(`Server says: be nice \x{FFFD}\[31mred`), exchangeTimeout)
	})
	t.Run("welcome error is fatal and explained", func(t *testing.T) {
		mailbox := startMailbox(t, "--signal-error=closed for maintenance")
		p := startProcess(t, scratch, ganderBin(t), "send", "--mailbox", mailbox.URL, "--text", "x")
		if err := p.wait(t, exchangeTimeout); err == nil {
			t.Fatal("send succeeded against an unwelcoming server")
		}
		if !strings.Contains(p.stderrText(), "refused service: closed for maintenance") {
			t.Fatalf("unexpected error output:\n%s", p.output())
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		p := startProcess(t, scratch, ganderBin(t), "send", "--mailbox", "ws://127.0.0.1:1/v1", "--text", "x")
		if err := p.wait(t, exchangeTimeout); err == nil {
			t.Fatal("send succeeded without a server")
		}
		if !strings.Contains(p.stderrText(), "cannot reach the mailbox server") {
			t.Fatalf("unexpected error output:\n%s", p.output())
		}
	})
}

func TestBadCodesAreExplained(t *testing.T) {
	mailbox := startMailbox(t)
	tests := []struct{ code, want string }{
		{"guitarist-revenge", "numeric nameplate"},
		{"7", "words"},
		{"7-guitarist revenge", "space"},
	}
	for _, tt := range tests {
		p := startProcess(t, scratch, ganderBin(t), "receive", "--mailbox", mailbox.URL, tt.code)
		if err := p.wait(t, 10*time.Second); err == nil {
			t.Fatalf("receive %q succeeded", tt.code)
		}
		if !strings.Contains(p.stderrText(), tt.want) {
			t.Errorf("receive %q: error does not mention %q:\n%s", tt.code, tt.want, p.stderrText())
		}
	}
}
