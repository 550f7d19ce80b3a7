package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/wormhole/codes"
)

// The TUI tests do what a person does, in tmux: start gander in a shell,
// type, press keys, read the screen, fetch a page through the forward
// with curl, quit, and check that the shell got a clean terminal back.

var (
	tuiLanding   = regexp.MustCompile(`Type the code you were given`)
	tuiCode      = regexp.MustCompile(`Tell your peer to run: gander (\S+)`)
	tuiVerifier  = regexp.MustCompile(`Verifier[^\n]*\n\s+((?:[0-9a-f]{4} ){7}[0-9a-f]{4})\s*\n\s+((?:[0-9a-f]{4} ){7}[0-9a-f]{4})`)
	tuiAsked     = regexp.MustCompile(`Your peer asks to listen for service "web"`)
	tuiHeld      = regexp.MustCompile(`your peer asks for something: confirm the verifier first`)
	tuiListening = regexp.MustCompile(`web\s+[←→] peer\s+(127\.0\.0\.1:\d+)`)
	tuiFrames    = regexp.MustCompile(`ui stopped.* frames=(\d+)`)
)

// bigSize is what the redraw check downloads through the forward.
const bigSize = 256 << 20

// tuiWebServer serves the test page, and bigSize bytes at /big.
func tuiWebServer(t *testing.T) int {
	t.Helper()
	chunk := make([]byte, 1<<20)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("Content-Length", strconv.Itoa(bigSize))
			for range bigSize / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		io.WriteString(w, page+r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().(*net.TCPAddr).Port
}

func (term *terminal) startGanderApp(mailboxURL string) {
	term.t.Helper()
	term.run("gander --mailbox " + mailboxURL + " --relay tcp:127.0.0.1:1")
	term.waitScreen(tuiLanding, 30*time.Second)
}

// typeCodeWithCompletion types code as a person would with Tab: the
// nameplate's first digit, Tab, then for each word just enough letters
// to make it unique, Tab; then Enter.
func (term *terminal) typeCodeWithCompletion(code string) {
	term.t.Helper()
	nameplate, rest, _ := strings.Cut(code, "-")
	term.typeText(nameplate[:1])
	term.keys("Tab")
	typed := nameplate + "-"
	term.waitScreen(regexp.MustCompile(`> `+regexp.QuoteMeta(typed)), 10*time.Second)
	words := strings.Split(rest, "-")
	for i, word := range words {
		n := 1
		for len(codes.Complete(nil, typed+word[:n], len(words)+1)) > 1 {
			n++
		}
		term.typeText(word[:n])
		term.keys("Tab")
		typed += word
		if i < len(words)-1 {
			typed += "-"
		}
		term.waitScreen(regexp.MustCompile(`> `+regexp.QuoteMeta(typed)), 10*time.Second)
	}
	term.keys("Enter")
}

func (term *terminal) verifier() string {
	term.t.Helper()
	m := term.waitScreen(tuiVerifier, 60*time.Second)
	return m[1] + " " + m[2]
}

// quit presses q, answers the closed screen if the session ended first,
// says y if the app asks first (forwards up, a transfer under way), and
// checks the terminal is clean.
func (term *terminal) quit() {
	term.t.Helper()
	term.keys("q")
	term.confirmQuitIfAsked()
	term.assertCleanAfterExit("Verifier", "Forwards", "gander 0")
}

// framesDrawn reads the frame count the app logs when it stops.
func (term *terminal) framesDrawn() int {
	term.t.Helper()
	log, err := os.ReadFile(filepath.Join(term.home, "state", "gander", "gander.log"))
	if err != nil {
		term.t.Fatal(err)
	}
	m := tuiFrames.FindAllStringSubmatch(string(log), -1)
	if m == nil {
		term.t.Fatalf("the log does not say how many frames were drawn:\n%s", log)
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func curl(t *testing.T, url string) string {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "30", url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	return string(out)
}

// idleCPU is the CPU the program in term uses over a quiet while, as a
// fraction of one core.
func idleCPU(t *testing.T, term *terminal) float64 {
	const window = 5 * time.Second
	pid := term.programPID()
	before := cpuTime(t, pid)
	time.Sleep(window)
	return float64(cpuTime(t, pid)-before) / float64(window)
}

func TestTUIPairGanderWithGander(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (e2e/test.sh installs it)")
	}
	mailbox := startMailbox(t)
	web := tuiWebServer(t)
	alice, bob := startTerminal(t, "alice"), startTerminal(t, "bob")
	if err := os.Mkdir(filepath.Join(bob.home, "Downloads"), 0o755); err != nil {
		t.Fatal(err)
	}

	alice.startGanderApp(mailbox.URL)
	alice.keys("Enter") // an empty line: a new code
	code := alice.waitScreen(tuiCode, 30*time.Second)[1]

	bob.startGanderApp(mailbox.URL)
	bob.typeCodeWithCompletion(code)
	if a, b := alice.verifier(), bob.verifier(); a != b {
		t.Fatalf("the verifiers differ: alice %q, bob %q", a, b)
	}

	alice.keys("a")
	alice.waitScreen(regexp.MustCompile(`\(•\) offer a service of mine`), 5*time.Second)
	alice.typeText("web:" + strconv.Itoa(web))
	alice.keys("Enter")
	// The question waits until bob has confirmed the verifier.
	bob.waitScreen(tuiHeld, 30*time.Second)
	if strings.Contains(bob.screen(), "127.0.0.1:") && tuiListening.MatchString(bob.screen()) {
		t.Fatal("bob listens before answering")
	}
	bob.keys("v")
	bob.waitScreen(tuiAsked, 30*time.Second)
	bob.keys("o")
	addr := bob.waitScreen(tuiListening, 30*time.Second)[1]
	if got := curl(t, "http://"+addr+"/through-the-tui"); got != page+"/through-the-tui" {
		t.Fatalf("curl through the forward got %q", got)
	}

	// Alice drops a file on her terminal; Bob accepts it into his
	// Downloads.
	shared := filepath.Join(alice.home, "notes for bob.txt")
	if err := os.WriteFile(shared, []byte("dropped through the wormhole\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.paste("'" + shared + "'")
	alice.waitScreen(regexp.MustCompile(`✓ /`), 10*time.Second) // the parsed path, truncated
	alice.keys("Enter")
	bob.waitScreen(regexp.MustCompile(`Your peer offers a file: "notes for bob.txt"`), 30*time.Second)
	bob.keys("y")
	bob.waitScreen(regexp.MustCompile(`✓ received`), 30*time.Second)
	got, err := os.ReadFile(filepath.Join(bob.home, "Downloads", "notes for bob.txt"))
	if err != nil || string(got) != "dropped through the wormhole\n" {
		t.Fatalf("bob's copy: %q, %v", got, err)
	}

	// Idle means no busy loop and no redraw at a frame rate (either is
	// tens of percent). Under 2 %: runs beside the suite's other tests
	// measured 0.8-1.2 %, in 10 ms clock ticks over 5 s (0.2 % each), and
	// 1.2 % failed the old bound of 1 % in CI.
	cpu := idleCPU(t, alice)
	t.Logf("idle CPU of the app: %.2f%% of a core", cpu*100)
	if cpu > 0.02 {
		t.Errorf("the idle app uses %.1f%% of a core, want under 2%%", cpu*100)
	}

	started := time.Now()
	if got := len(curl(t, "http://"+addr+"/big")); got != bigSize {
		t.Fatalf("downloaded %d bytes of %d", got, bigSize)
	}
	took := time.Since(started)

	alice.quit()
	bob.waitScreen(regexp.MustCompile(`(?i)closed|peer.*(left|closed)`), 15*time.Second)
	bob.quit()
	// 250 ms traffic updates make about 4 frames a second while bytes
	// move; a redraw per record would be thousands.
	frames := bob.framesDrawn()
	t.Logf("bob drew %d frames in all, %d MiB downloaded in %v through his forward", frames, bigSize>>20, took.Round(time.Millisecond))
	if limit := 150 + int(8*took.Seconds()); frames > limit {
		t.Errorf("bob drew %d frames, more than %d: a redraw storm", frames, limit)
	}
}

func TestTUIPairWithFowl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (e2e/test.sh installs it)")
	}
	mailbox := startMailbox(t)
	web := tuiWebServer(t)
	alice := startTerminal(t, "alice")
	alice.startGanderApp(mailbox.URL)
	alice.keys("Enter")
	code := alice.waitScreen(tuiCode, 30*time.Second)[1]

	fowl := startFowl(t, mailbox.URL, "--remote", fmt.Sprintf("web:%d", web), code)
	alice.waitScreen(regexp.MustCompile(`peer: fowl`), 60*time.Second)
	alice.waitScreen(tuiHeld, 30*time.Second)
	alice.keys("v")
	alice.waitScreen(tuiAsked, 30*time.Second)
	alice.keys("o")
	addr := alice.waitScreen(tuiListening, 30*time.Second)[1]
	eventually(t, "curl through fowl's service", func() error {
		out, err := exec.Command("curl", "-sS", "--max-time", "10", "http://"+addr+"/from-fowl").Output()
		if err == nil && string(out) != page+"/from-fowl" {
			err = fmt.Errorf("got %q", out)
		}
		return err
	})
	alice.quit()
	if err := fowl.wait(t, 15*time.Second); err != nil {
		t.Logf("fowl after gander's goodbye: %v", err)
	}
}
