package textcmd

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// lockedBuffer is a bytes.Buffer that a command writes while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var codeLine = regexp.MustCompile(`Wormhole code is: (\S+)\n`)

// startSend runs Send and returns the code it announced and its result.
func startSend(t *testing.T, ctx context.Context, cfg Config, text string) (string, *lockedBuffer, <-chan error) {
	t.Helper()
	stderr := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- Send(ctx, cfg, text, stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := codeLine.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stderr, done
		}
		select {
		case err := <-done:
			t.Fatalf("Send ended before announcing a code: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Send announced no code:\n%s", stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the command did not end")
		return nil
	}
}

// A message goes from Send to Receive, whose code is typed at the
// prompt; both show the server's message, sanitised.
func TestSendAndReceive(t *testing.T) {
	server := mailboxtest.New(t, mailboxtest.WithMOTD("hello \x1b[2J"))
	ctx := context.Background()
	cfg := Config{MailboxURL: server.URL(), CodeLength: 2}
	const text = "héllo from the other side ✓"
	code, sendErr, sent := startSend(t, ctx, cfg, text)
	if strings.Count(code, "-") != 2 {
		t.Errorf("code %q has not 2 words", code)
	}
	if want := "gander receive " + code + "\n"; !strings.Contains(sendErr.String(), want) {
		t.Errorf("Send's instructions lack %q:\n%s", want, sendErr)
	}

	var stdout, stderr bytes.Buffer
	if err := Receive(ctx, cfg, strings.NewReader(" "+code+" \n"), &stdout, &stderr); err != nil {
		t.Fatalf("Receive: %v\n%s", err, stderr.String())
	}
	if got := stdout.String(); got != text+"\n" {
		t.Errorf("Receive printed %q, want %q", got, text+"\n")
	}
	if err := wait(t, sent); err != nil {
		t.Fatalf("Send: %v\n%s", err, sendErr)
	}
	for name, out := range map[string]string{"Send": sendErr.String(), "Receive": stderr.String()} {
		if !strings.Contains(out, "Server says: hello \uFFFD[2J\n") {
			t.Errorf("%s did not show the sanitised MOTD:\n%s", name, out)
		}
	}
	if !strings.HasPrefix(stderr.String(), "Enter receive wormhole code: ") {
		t.Errorf("Receive did not ask for the code:\n%s", stderr.String())
	}
	if !strings.HasSuffix(sendErr.String(), "text message sent\n") {
		t.Errorf("Send did not say it sent:\n%s", sendErr)
	}
}

// No code at the prompt is ErrNoCode, before any wormhole is opened.
func TestReceiveWithoutACode(t *testing.T) {
	server := mailboxtest.New(t)
	var stdout, stderr bytes.Buffer
	err := Receive(context.Background(), Config{MailboxURL: server.URL()}, strings.NewReader(""), &stdout, &stderr)
	if !errors.Is(err, ErrNoCode) {
		t.Fatalf("Receive = %v, want ErrNoCode", err)
	}
	if server.Connections() != 0 {
		t.Errorf("%d connections to the mailbox, want none", server.Connections())
	}
}

// Different codes fail both sides with ErrWrongCode; a word not in the
// list is warned of first.
func TestWrongCode(t *testing.T) {
	server := mailboxtest.New(t)
	ctx := context.Background()
	code, _, sent := startSend(t, ctx, Config{MailboxURL: server.URL(), Code: "7-guitarist-revenge"}, "secret")
	if code != "7-guitarist-revenge" {
		t.Fatalf("Send announced %q, want the code given", code)
	}
	var stdout, stderr bytes.Buffer
	err := Receive(ctx, Config{MailboxURL: server.URL(), Code: "7-guitarist-revenue"}, strings.NewReader(""), &stdout, &stderr)
	if !errors.Is(err, wormhole.ErrWrongCode) {
		t.Errorf("Receive = %v, want ErrWrongCode", err)
	}
	if !strings.HasPrefix(stderr.String(), "warning: ") || !strings.Contains(stderr.String(), "revenue") {
		t.Errorf("no warning of the unknown word:\n%s", stderr.String())
	}
	if err := wait(t, sent); !errors.Is(err, wormhole.ErrWrongCode) {
		t.Errorf("Send = %v, want ErrWrongCode", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("Receive printed %q", stdout.String())
	}
}

// Interrupted while waiting for the other side: ErrInterruptedLonely.
func TestSendInterruptedBeforeThePeerCame(t *testing.T) {
	server := mailboxtest.New(t)
	ctx, interrupt := context.WithCancel(context.Background())
	_, _, sent := startSend(t, ctx, Config{MailboxURL: server.URL(), CodeLength: 2}, "nobody reads this")
	interrupt()
	if err := wait(t, sent); !errors.Is(err, ErrInterruptedLonely) {
		t.Errorf("Send = %v, want ErrInterruptedLonely", err)
	}
}
