package tui

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
)

// clipboardTool is a system clipboard program: it copies what it reads on
// stdin. needs is the environment variable that says its display is
// there (empty: none needed), goos the system it is for (empty: any).
type clipboardTool struct {
	name  string
	args  []string
	needs string
	goos  string
}

// clipboardTools are tried in order; the first present one is used.
var clipboardTools = []clipboardTool{
	{name: "pbcopy", goos: "darwin"},
	{name: "wl-copy", needs: "WAYLAND_DISPLAY"},
	{name: "xclip", args: []string{"-selection", "clipboard"}, needs: "DISPLAY"},
	{name: "xsel", args: []string{"--clipboard", "--input"}, needs: "DISPLAY"},
}

// clipboardTimeout bounds a clipboard program: one that hangs (a display
// that does not answer) costs this, and the terminal's clipboard is
// used instead.
const clipboardTimeout = 2 * time.Second

// clipboard copies text: with a system clipboard program if there is one
// for this display, which says whether it worked, else by OSC 52, which
// asks the terminal and hears nothing back (tmux and many terminals drop
// it). Its fields are the system's; tests replace them.
type clipboard struct {
	getenv   func(string) string
	lookPath func(string) (string, error)
	run      func(ctx context.Context, path string, args []string, stdin string) error
	goos     string
}

func systemClipboard() clipboard {
	return clipboard{getenv: os.Getenv, lookPath: exec.LookPath, run: runClipboardTool, goos: runtime.GOOS}
}

func runClipboardTool(ctx context.Context, path string, args []string, stdin string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	// No pipes for its output: xclip stays behind to serve the selection,
	// and Wait would wait for it through them.
	cmd.Stdout, cmd.Stderr = nil, nil
	return cmd.Run()
}

// tool is the clipboard program to use here, if any.
func (c clipboard) tool() (clipboardTool, string, bool) {
	for _, t := range clipboardTools {
		if (t.goos != "" && t.goos != c.goos) || (t.needs != "" && c.getenv(t.needs) == "") {
			continue
		}
		if path, err := c.lookPath(t.name); err == nil {
			return t, path, true
		}
	}
	return clipboardTool{}, "", false
}

// copiedMsg says how the copy went: by tool (its name), or by OSC 52
// (tool empty; failed names a program that was tried and failed).
type copiedMsg struct {
	seq          int
	tool, failed string
}

// copy returns the command that copies text: with a program, answering
// copiedMsg{seq} once it has run; without one, by OSC 52 (the caller
// says so at once: there is nothing to wait for).
func (c clipboard) copy(text string, seq int) (cmd tea.Cmd, byTool bool) {
	t, path, ok := c.tool()
	if !ok {
		return tea.SetClipboard(text), false
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), clipboardTimeout)
		defer cancel()
		if err := c.run(ctx, path, t.args, text); err != nil {
			return tea.BatchMsg{tea.SetClipboard(text), func() tea.Msg { return copiedMsg{seq: seq, failed: t.name} }}
		}
		return copiedMsg{seq: seq, tool: t.name}
	}, true
}

// copiedText says what happened, and only that.
func (m copiedMsg) text() (string, bool) {
	switch {
	case m.tool != "":
		return "copied to the clipboard with " + m.tool, true
	case m.failed != "":
		return m.failed + " failed; sent to the terminal's clipboard (OSC 52): if paste doesn't work, copy the code by hand", false
	}
	return "sent to the terminal's clipboard (OSC 52): if paste doesn't work, copy the code by hand", false
}

// noClipboardTools is a clipboard that finds no program: OSC 52 only.
var noClipboardTools = clipboard{
	getenv:   func(string) string { return "" },
	lookPath: func(string) (string, error) { return "", exec.ErrNotFound },
	run:      func(context.Context, string, []string, string) error { return exec.ErrNotFound },
}
