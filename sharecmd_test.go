package main

import (
	"strings"
	"testing"
)

func TestShareUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"join"}, 2, "gander join: give the code the host was given: gander join CODE"},
		{[]string{"join", "1-a-b", "2-c-d"}, 2, "gander join: give the code the host was given"},
		{[]string{"join", "--read-only", "1-a-b"}, 2, "gander join: --read-only and --command are the host's (gander share)"},
		{[]string{"join", "guitarist-revenge"}, 2, "gander join: "},
		{[]string{"share", "1-a-b"}, 2, "gander share: takes no code (it prints one); to join, use gander join CODE"},
		{[]string{"share", "--code-length", "0"}, 2, "gander share: --code-length must be at least 1"},
		{[]string{"share", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		// A pipe is no terminal to share or to watch on.
		{[]string{"share", "--read-only", "--command", "true"}, 2, "gander share: needs a terminal"},
		{[]string{"join", "1-a-b"}, 2, "gander join: needs a terminal"},
	} {
		var stdout, stderr strings.Builder
		status := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if status != tc.status || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("gander %q: status %d, stderr %q; want %d and %q", tc.args, status, stderr.String(), tc.status, tc.stderr)
		}
	}
}
