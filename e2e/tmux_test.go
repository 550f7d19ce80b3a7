package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A terminal for the TUI tests: a tmux server of its own (a private
// socket, no config file) with one window running a plain bash, in which
// the test types commands and keys as a person would and reads the screen
// with capture-pane.
type terminal struct {
	t      testing.TB
	socket string
	home   string // HOME and XDG_STATE_HOME of the shell: logs and saves land here
}

const (
	termWidth  = 100
	termHeight = 30
	// shellPrompt is the prompt of the test's bash; a screen that ends
	// with it is back at the shell.
	shellPrompt = "e2e$ "
)

// atPrompt matches a screen whose last line is the shell's prompt
// (capture-pane trims its trailing blank).
var atPrompt = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strings.TrimSpace(shellPrompt)) + `\s*\z`)

func startTerminal(t testing.TB, name string) *terminal {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (e2e/test.sh installs it)")
	}
	home := t.TempDir()
	term := &terminal{t: t, socket: filepath.Join(home, "tmux.sock"), home: home}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"PS1=" + shellPrompt, "PATH=" + filepath.Dir(ganderBin(t)) + ":" + os.Getenv("PATH"),
		"TERM=xterm-256color", "LANG=C.UTF-8",
		// bash writes its history when tmux's kill-server hangs it up,
		// racing the removal of home at the test's end.
		"HISTFILE=/dev/null",
	}
	// Through env: tmux 3.3 lets its own PATH win over new-session -e.
	args := []string{"-f", "/dev/null", "new-session", "-d", "-s", name,
		"-x", strconv.Itoa(termWidth), "-y", strconv.Itoa(termHeight), "-c", home, "env"}
	args = append(append(args, env...), bash, "--norc", "--noprofile")
	term.tmux(args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screen of %s at the end:\n%s", name, term.screen())
		}
		out, _ := exec.Command("tmux", "-S", term.socket, "display-message", "-p", "#{pid}").Output()
		pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		exec.Command("tmux", "-S", term.socket, "kill-server").Run()
		// The server's end, so nothing it ran still writes into home.
		for deadline := time.Now().Add(5 * time.Second); pid > 0 && time.Now().Before(deadline); {
			if err := syscall.Kill(pid, 0); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	term.waitScreen(atPrompt, 10*time.Second)
	return term
}

func (term *terminal) tmux(args ...string) string {
	term.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", term.socket}, args...)...).CombinedOutput()
	if err != nil {
		term.t.Fatalf("tmux %q: %v: %s", args, err, out)
	}
	return string(out)
}

// run types a command line into the shell.
func (term *terminal) run(line string) {
	term.t.Helper()
	term.tmux("send-keys", "-l", line)
	term.tmux("send-keys", "Enter")
}

// typeText types s literally; keys sends tmux key names (Tab, Enter,
// Escape, C-c, Up, ...).
func (term *terminal) typeText(s string) {
	term.t.Helper()
	term.tmux("send-keys", "-l", s)
}

// paste pastes s as a terminal does when files are dropped on it: as a
// bracketed paste, if the program asked for those.
func (term *terminal) paste(s string) {
	term.t.Helper()
	term.tmux("set-buffer", "--", s)
	term.tmux("paste-buffer", "-p", "-d")
}

func (term *terminal) keys(keys ...string) {
	term.t.Helper()
	term.tmux(append([]string{"send-keys"}, keys...)...)
}

// screen is what the terminal shows now, one line per row, trailing
// blanks trimmed.
func (term *terminal) screen() string {
	out, err := exec.Command("tmux", "-S", term.socket, "capture-pane", "-p").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(capture-pane failed: %v: %s)", err, out)
	}
	return string(out)
}

// flag reads one of tmux's pane format variables, such as alternate_on.
func (term *terminal) flag(name string) string {
	term.t.Helper()
	return strings.TrimSpace(term.tmux("display-message", "-p", "#{"+name+"}"))
}

// waitScreen waits until re matches the screen and returns the submatches.
func (term *terminal) waitScreen(re *regexp.Regexp, timeout time.Duration) []string {
	term.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := term.screen()
		if m := re.FindStringSubmatch(s); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("after %v the screen does not match %s:\n%s", timeout, re, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// programPID is the pid of the program the shell runs in the foreground.
func (term *terminal) programPID() int {
	term.t.Helper()
	shell := term.flag("pane_pid")
	out, err := exec.Command("pgrep", "-P", shell).Output()
	if err != nil {
		term.t.Fatalf("no program runs under the shell %s", shell)
	}
	pid, err := strconv.Atoi(strings.Fields(string(out))[0])
	if err != nil {
		term.t.Fatal(err)
	}
	return pid
}

// cpuTime is a process's user+system CPU time so far.
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// contain spaces: utime and stime are the 12th and 13th of them.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	const ticksPerSecond = 100 // USER_HZ, the same on every Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// assertCleanAfterExit checks that the program has given the terminal
// back as it found it: the shell prompt is shown, the normal screen is
// back (no alternate screen), the cursor is visible, and no mouse or
// keypad mode is left on.
func (term *terminal) assertCleanAfterExit(leftovers ...string) {
	term.t.Helper()
	term.waitScreen(atPrompt, 15*time.Second)
	for flag, want := range map[string]string{
		"alternate_on": "0", "cursor_flag": "1", "mouse_any_flag": "0",
		"mouse_all_flag": "0", "keypad_flag": "0", "insert_flag": "0",
	} {
		if got := term.flag(flag); got != want {
			term.t.Errorf("after exit tmux reports %s=%s, want %s", flag, got, want)
		}
	}
	screen := term.screen()
	for _, s := range leftovers {
		if strings.Contains(screen, s) {
			term.t.Errorf("after exit the screen still shows %q:\n%s", s, screen)
		}
	}
}
