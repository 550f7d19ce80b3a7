package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A hostile fowl peer (the real Python library, e2e/hostile_fowl_peer.py)
// floods the TUI with listen requests: 60 for the same service and port,
// then, 4 s later, 40 for distinct ones (100 command channels: forwards
// refuses any beyond 128 open ones). The repeats make one question
// (forwards holds one name to one listener: the repeats are refused
// within 2 s); of the distinct
// requests at most 16 questions wait and the rest are refused at once
// with a reason the peer reads; nothing is shown before the verifier is
// confirmed; one key denies all.
func TestTUIHostilePeerFloodsRequests(t *testing.T) {
	mailbox := startMailbox(t)
	alice := startTerminal(t, "alice")
	alice.startGanderApp(mailbox.URL)
	code := alice.newCode()

	// session.MaxPendingAsks; forwards' maxCommandChannels.
	const repeat, distinct, maxPending = 60, 40, 16
	const (
		tooMany       = "too many requests waiting for an answer"
		tooManyOpen   = "Too many open command channels (at most 128)"
		alreadyListen = "Already listening for web"
	)
	peer := startProcess(t, ".", venvBin(t, "python"), "hostile_fowl_peer.py",
		"--mailbox", mailbox.URL, "--code", code, "--repeat", fmt.Sprint(repeat), "--distinct", fmt.Sprint(distinct), "--pause", "4")
	peer.waitFor(t, regexp.MustCompile(`\{"sent": 40\}`), 60*time.Second)

	// Every repeat but the first, and the 25 distinct requests beyond the
	// 15 that join web's question, are answered without asking anyone.
	refusedAtOnce := repeat - 1 + distinct - (maxPending - 1)
	peer.waitFor(t, regexp.MustCompile(fmt.Sprintf(`\{"answers": %d, `, refusedAtOnce)), 30*time.Second)
	alice.waitScreen(regexp.MustCompile(`your peer asks for 16 things: confirm the verifier first`), 10*time.Second)
	if s := alice.screen(); strings.Contains(s, "Your peer asks to listen") {
		t.Fatalf("a question is shown before the verifier is confirmed:\n%s", s)
	}

	alice.keys("v")
	alice.waitScreen(regexp.MustCompile(`(?s)Your peer asks to listen for service "web".*15 more waiting`), 10*time.Second)
	alice.keys("D")
	last := peer.waitFor(t, regexp.MustCompile(fmt.Sprintf(`\{"answers": %d, "reasons": (\{[^}]*\})\}`, repeat+distinct)), 30*time.Second)[1]
	var reasons map[string]int
	if err := json.Unmarshal([]byte(last), &reasons); err != nil {
		t.Fatal(err)
	}
	denied := 0
	for reason, n := range reasons {
		if strings.HasPrefix(reason, "No service permitted for name: ") {
			denied += n
		}
	}
	if reasons[tooMany] != distinct-(maxPending-1) || reasons[tooManyOpen]+reasons[alreadyListen] != repeat-1 || denied != maxPending {
		t.Fatalf("the peer was told %v", reasons)
	}
	if n := strings.Count(peer.stdoutText(), `"listening"`); n != 0 {
		t.Fatalf("gander listened %d times", n)
	}
	// The peer has its answers; the screen follows within a frame or two.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s := alice.screen()
		if !strings.Contains(s, "more waiting") && !strings.Contains(s, "Your peer asks") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("questions left after deny all:\n%s", s)
		}
	}
	alice.quit()
}

// TestTUIHostileFloodRSS measures, when GANDER_MEASURE_RSS is set, the
// peak RSS and the threads of the TUI while the hostile peer sends 2000
// repeats and 2000 distinct listen requests (for the resource budget).
func TestTUIHostileFloodRSS(t *testing.T) {
	if os.Getenv("GANDER_MEASURE_RSS") == "" {
		t.Skip("set GANDER_MEASURE_RSS=1 to measure")
	}
	mailbox := startMailbox(t)
	alice := startTerminal(t, "alice")
	alice.startGanderApp(mailbox.URL)
	code := alice.newCode()
	pid := alice.programPID()
	peer := startProcess(t, ".", venvBin(t, "python"), "hostile_fowl_peer.py",
		"--mailbox", mailbox.URL, "--code", code, "--repeat", "2000", "--distinct", "2000", "--pause", "5")
	peer.waitFor(t, regexp.MustCompile(`(?s)\{"sent": 2000\}.*\{"sent": 2000\}`), 120*time.Second)
	time.Sleep(15 * time.Second)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM") || strings.HasPrefix(line, "VmRSS") || strings.HasPrefix(line, "Threads") {
			t.Log(line)
		}
	}
	answers := regexp.MustCompile(`"answers": (\d+)`).FindAllStringSubmatch(peer.stdoutText(), -1)
	if len(answers) > 0 {
		t.Logf("the peer got %s answers at once", answers[len(answers)-1][1])
	}
	t.Logf("screen:\n%s", alice.screen())
}
