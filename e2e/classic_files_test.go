package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Classic file transfer (package classic): `gander send PATH` and `gander
// receive` with magic-wormhole 0.24's `wormhole send`/`receive` and
// wormhole-william, over Transit, direct and through the real transit relay.

const classicTimeout = 90 * time.Second

// classicPeer starts one side of a classic transfer.
type classicPeer struct {
	name string
	// send starts sending path and returns the process once it has told
	// the code; receive starts receiving into dir.
	send    func(t *testing.T, env classicEnv, path string, extra ...string) (*process, string)
	receive func(t *testing.T, env classicEnv, dir, code string, extra ...string) *process
}

// classicEnv is the servers a transfer uses and how.
type classicEnv struct {
	mailbox string
	relay   string // tcp:HOST:PORT, or ""
	// relayOnly: neither side listens, so the relay is the only path.
	relayOnly bool
	// publicRelayHere: gander runs as wormhole-william does (startHosted),
	// the public relay's name leading to 127.0.0.1.
	publicRelayHere bool
	// ganderBin, if set, is the gander binary to run instead of this
	// tree's (TestClassicGiB's GANDER_OLD_BIN, to compare with).
	ganderBin string
}

// start runs gander, hosted if env says so.
func (env classicEnv) start(t *testing.T, dir string, args ...string) *process {
	bin := env.ganderBin
	if bin == "" {
		bin = ganderBin(t)
	}
	if env.publicRelayHere {
		return startHosted(t, dir, bin, args...)
	}
	return startProcess(t, dir, bin, args...)
}

var (
	ganderClassic = classicPeer{
		name: "gander",
		send: func(t *testing.T, env classicEnv, path string, extra ...string) (*process, string) {
			args := append([]string{"send", "--relay-url", env.mailbox, "--transit-helper", env.relay, "--hide-progress"}, extra...)
			if env.relayOnly {
				args = append(args, "--no-listen")
			}
			p := env.start(t, filepath.Dir(path), append(args, path)...)
			return p, p.waitFor(t, codeLine, classicTimeout)[1]
		},
		receive: func(t *testing.T, env classicEnv, dir, code string, extra ...string) *process {
			args := append([]string{"receive", "--relay-url", env.mailbox, "--transit-helper", env.relay, "--hide-progress"}, extra...)
			if env.relayOnly {
				args = append(args, "--no-listen")
			}
			return env.start(t, dir, append(args, code)...)
		},
	}
	pyClassic = classicPeer{
		name: "python",
		send: func(t *testing.T, env classicEnv, path string, extra ...string) (*process, string) {
			args := []string{"--relay-url", env.mailbox}
			if env.relay != "" {
				args = append(args, "--transit-helper", env.relay)
			}
			args = append(append(args, "send", "--hide-progress"), extra...)
			if env.relayOnly {
				args = append(args, "--no-listen")
			}
			p := startProcess(t, filepath.Dir(path), venvBin(t, "wormhole"), append(args, path)...)
			return p, p.waitFor(t, codeLine, classicTimeout)[1]
		},
		receive: func(t *testing.T, env classicEnv, dir, code string, extra ...string) *process {
			args := []string{"--relay-url", env.mailbox}
			if env.relay != "" {
				args = append(args, "--transit-helper", env.relay)
			}
			args = append(append(args, "receive", "--hide-progress"), extra...)
			if env.relayOnly {
				args = append(args, "--no-listen")
			}
			return startProcess(t, dir, venvBin(t, "wormhole"), append(args, code)...)
		},
	}
	// wormhole-william has no transit-helper or no-listen flags: it
	// listens, and dials the public relay, whose name it must resolve or
	// give up (see startWilliam).
	williamClassic = classicPeer{
		name: "wormhole-william",
		send: func(t *testing.T, env classicEnv, path string, extra ...string) (*process, string) {
			args := append([]string{"send", "--relay-url", env.mailbox, "--hide-progress"}, extra...)
			p := startHosted(t, filepath.Dir(path), williamBin(t), append(args, path)...)
			return p, p.waitFor(t, codeLine, classicTimeout)[1]
		},
		receive: func(t *testing.T, env classicEnv, dir, code string, extra ...string) *process {
			args := append([]string{"receive", "--relay-url", env.mailbox, "--hide-progress"}, extra...)
			p := startHosted(t, dir, williamBin(t), append(args, code)...)
			p.writeStdin(t, "y\n") // its "ok? (y/N)"
			return p
		},
	}
)

func williamBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("wormhole-william")
	if err != nil {
		t.Skip("wormhole-william is not installed (e2e/test.sh installs the Debian package)")
	}
	return bin
}

// startHosted runs bin (wormhole-william, or gander beside it) in a mount
// namespace of its own whose /etc/hosts sends the public relay's name to
// 127.0.0.1: without an answer for that name wormhole-william's sender
// gives up before it offers anything (and in the loopback-only namespace
// there is no DNS). A transit relay listens there (TestClassicWithWilliam).
func startHosted(t *testing.T, dir, bin string, args ...string) *process {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare to give wormhole-william its own /etc/hosts")
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost transit.magic-wormhole.io\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `mount --bind "$0" /etc/hosts && exec "$@"`
	return startProcess(t, dir, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, hosts, bin}, args...)...)
}

// accepting is the flag that makes a receiver take the offer unasked.
func accepting(p classicPeer) []string {
	if p.name == "wormhole-william" {
		return nil // answered on stdin
	}
	return []string{"--accept-file"}
}

// transfer sends path from one peer to the other and returns where the
// receiver put it.
func transfer(t *testing.T, env classicEnv, from, to classicPeer, path string) string {
	t.Helper()
	got, _, _ := transferProcs(t, env, from, to, path)
	return got
}

// transferProcs is transfer, returning the processes too.
func transferProcs(t *testing.T, env classicEnv, from, to classicPeer, path string) (string, *process, *process) {
	t.Helper()
	sendProc, code := from.send(t, env, path)
	dir := t.TempDir()
	recvProc := to.receive(t, env, dir, code, accepting(to)...)
	if err := recvProc.wait(t, classicTimeout); err != nil {
		t.Fatalf("%s receive failed: %v\n%s\n%s send:\n%s", to.name, err, recvProc.output(), from.name, sendProc.output())
	}
	if err := sendProc.wait(t, classicTimeout); err != nil {
		t.Fatalf("%s send failed: %v\n%s", from.name, err, sendProc.output())
	}
	return filepath.Join(dir, filepath.Base(path)), sendProc, recvProc
}

// classicCorpus makes the things every pair sends: a file, an empty file,
// a directory tree, unicode names.
func classicCorpus(t *testing.T) map[string]string {
	dir := t.TempDir()
	file := filepath.Join(dir, "data.bin")
	writeRandomFile(t, file, 3<<20+17)
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unicode := filepath.Join(dir, "résumé — 日本語 ✓.txt")
	writeRandomFile(t, unicode, 4096)
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, 20)
	// Unicode and empty files inside the tree too.
	if err := os.WriteFile(filepath.Join(tree, "ünïcødé ☃"), []byte("snow"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "empty file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"file": file, "empty file": empty, "unicode name": unicode, "directory tree": tree}
}

func sameThing(t *testing.T, want, got string) {
	t.Helper()
	st, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() {
		sameContent(t, want, got)
		return
	}
	w, g := digestTree(t, want), digestTree(t, got)
	if len(w) != len(g) {
		t.Fatalf("received tree has %d entries, want %d:\n%v\n%v", len(g), len(w), g, w)
	}
	for k, v := range w {
		if g[k] != v {
			t.Fatalf("received tree differs at %q", k)
		}
	}
}

func TestClassicWithPython(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	corpus := classicCorpus(t)
	for _, pair := range []struct{ from, to classicPeer }{
		{ganderClassic, pyClassic}, {pyClassic, ganderClassic}, {ganderClassic, ganderClassic},
	} {
		for _, mode := range []struct {
			name string
			env  classicEnv
		}{
			{"direct", classicEnv{mailbox: mailbox.URL}},
			{"relay only", classicEnv{mailbox: mailbox.URL, relay: relay.Hint, relayOnly: true}},
		} {
			for _, kind := range []string{"file", "empty file", "unicode name", "directory tree"} {
				if mode.name == "relay only" && kind != "file" && kind != "directory tree" {
					continue // the path does not change what is sent
				}
				t.Run(pair.from.name+" to "+pair.to.name+"/"+mode.name+"/"+kind, func(t *testing.T) {
					got := transfer(t, mode.env, pair.from, pair.to, corpus[kind])
					sameThing(t, corpus[kind], got)
				})
			}
		}
	}
}

// The relay-only runs really went through the relay: gander says which
// connection it used.
func TestClassicRelayOnlyUsesRelay(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	env := classicEnv{mailbox: mailbox.URL, relay: relay.Hint, relayOnly: true}
	file := filepath.Join(t.TempDir(), "f")
	writeRandomFile(t, file, 1<<20)
	sendProc, code := ganderClassic.send(t, env, file)
	recvProc := pyClassic.receive(t, env, t.TempDir(), code, "--accept-file")
	if err := recvProc.wait(t, classicTimeout); err != nil {
		t.Fatalf("receive: %v\n%s", err, recvProc.output())
	}
	if err := sendProc.wait(t, classicTimeout); err != nil {
		t.Fatalf("send: %v\n%s", err, sendProc.output())
	}
	if !strings.Contains(sendProc.stderrText(), "Sending (relay ") {
		t.Fatalf("gander did not send through the relay:\n%s", sendProc.output())
	}
}

// wormhole-william 1.0.6 leaves out two things the reference does: it
// makes no empty folders when it unpacks (so the tree sent here has none),
// and it waits forever for a record of an empty file (so none is sent).
func TestClassicWithWilliam(t *testing.T) {
	env := startWilliamWorld(t)
	corpus := classicCorpus(t)
	if err := os.Remove(filepath.Join(corpus["directory tree"], "empty")); err != nil {
		t.Fatal(err)
	}
	for _, pair := range []struct{ from, to classicPeer }{{ganderClassic, williamClassic}, {williamClassic, ganderClassic}} {
		for _, kind := range []string{"file", "unicode name", "directory tree"} {
			t.Run(pair.from.name+" to "+pair.to.name+"/"+kind, func(t *testing.T) {
				got, sendProc, _ := transferProcs(t, env, pair.from, pair.to, corpus[kind])
				sameThing(t, corpus[kind], got)
				if m := regexp.MustCompile(`Sending \((.*)\)\.\.`).FindStringSubmatch(sendProc.stderrText()); m != nil {
					t.Logf("gander: %s", m[0])
				}
			})
		}
	}
}

// A wrong code fails both sides, with a wrong-code error, before any file
// is offered.
func TestClassicWrongCode(t *testing.T) {
	mailbox := startMailbox(t)
	env := classicEnv{mailbox: mailbox.URL}
	file := filepath.Join(t.TempDir(), "f")
	writeRandomFile(t, file, 1000)
	wrong := regexp.MustCompile(`(?i)wrong code|key confirmation failed|WrongPasswordError`)
	for i, pair := range []struct{ from, to classicPeer }{{ganderClassic, pyClassic}, {pyClassic, ganderClassic}} {
		t.Run(pair.from.name+" to "+pair.to.name, func(t *testing.T) {
			nameplate := []string{"31", "32"}[i]
			sendProc, _ := pair.from.send(t, env, file, "--code", nameplate+"-guitarist-revenge")
			dir := t.TempDir()
			recvProc := pair.to.receive(t, env, dir, nameplate+"-guitarist-revenue", "--accept-file")
			for _, p := range []*process{recvProc, sendProc} {
				if err := p.wait(t, 30*time.Second); err == nil {
					t.Fatalf("%s succeeded with a wrong code:\n%s", p.name, p.output())
				}
				if !wrong.MatchString(p.output()) {
					t.Fatalf("%s did not report a wrong code:\n%s", p.name, p.output())
				}
			}
			assertEmptyDir(t, dir)
		})
	}
}

// A receiver that says no: nothing is written, and the sender is told.
func TestClassicRefusedOffer(t *testing.T) {
	mailbox := startMailbox(t)
	env := classicEnv{mailbox: mailbox.URL}
	file := filepath.Join(t.TempDir(), "f")
	writeRandomFile(t, file, 1000)
	for _, pair := range []struct{ from, to classicPeer }{{ganderClassic, pyClassic}, {pyClassic, ganderClassic}} {
		t.Run(pair.from.name+" to "+pair.to.name, func(t *testing.T) {
			sendProc, code := pair.from.send(t, env, file)
			dir := t.TempDir()
			recvProc := pair.to.receive(t, env, dir, code)
			recvProc.waitFor(t, regexp.MustCompile(`ok\? \([Yy]/[Nn]\)`), classicTimeout)
			recvProc.writeStdin(t, "n\n")
			if err := recvProc.wait(t, classicTimeout); err == nil {
				t.Fatalf("receiver succeeded after refusing:\n%s", recvProc.output())
			}
			if err := sendProc.wait(t, classicTimeout); err == nil {
				t.Fatalf("sender succeeded though refused:\n%s", sendProc.output())
			}
			if !strings.Contains(sendProc.stderrText(), "transfer rejected") {
				t.Fatalf("sender was not told of the refusal:\n%s", sendProc.output())
			}
			assertEmptyDir(t, dir)
		})
	}
}

// A receiver whose disk is too small refuses before the transfer, with a
// reason the sender shows. The disk is a real 1 MiB tmpfs.
func TestClassicReceiverOutOfSpace(t *testing.T) {
	dir := smallDisk(t, "1m")
	mailbox := startMailbox(t)
	env := classicEnv{mailbox: mailbox.URL}
	file := filepath.Join(t.TempDir(), "big")
	writeRandomFile(t, file, 4<<20)
	for _, pair := range []struct{ from, to classicPeer }{{pyClassic, ganderClassic}, {ganderClassic, ganderClassic}} {
		t.Run(pair.from.name+" to "+pair.to.name, func(t *testing.T) {
			sendProc, code := pair.from.send(t, env, file)
			recvProc := pair.to.receive(t, env, dir, code, "--accept-file")
			if err := recvProc.wait(t, classicTimeout); err == nil {
				t.Fatalf("receiver accepted a file larger than its disk:\n%s", recvProc.output())
			}
			if !strings.Contains(recvProc.stderrText(), "not enough free space") {
				t.Fatalf("receiver did not say why:\n%s", recvProc.output())
			}
			if err := sendProc.wait(t, classicTimeout); err == nil {
				t.Fatalf("sender succeeded:\n%s", sendProc.output())
			}
			if !strings.Contains(sendProc.stderrText(), "lacks disk space") {
				t.Fatalf("sender was not told why:\n%s", sendProc.output())
			}
			assertEmptyDir(t, dir)
		})
	}
}

// smallDisk mounts a tmpfs of the given size for the test, or skips if the
// test may not mount.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%s should be empty, holds %q", dir, names)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// `gander send --text -` sends what stdin holds, as `wormhole send --text -`
// does; `gander receive` still takes text from the reference.
func TestClassicTextFromStdin(t *testing.T) {
	mailbox := startMailbox(t)
	const text = "from stdin ✓\nsecond line"
	sendProc := startProcess(t, scratch, ganderBin(t), "send", "--relay-url", mailbox.URL, "--text", "-")
	sendProc.writeStdin(t, text)
	sendProc.closeStdin(t)
	code := sendProc.waitFor(t, codeLine, classicTimeout)[1]
	recvProc := pythonReceive(t, mailbox.URL, code)
	if err := recvProc.wait(t, classicTimeout); err != nil {
		t.Fatalf("receive: %v\n%s", err, recvProc.output())
	}
	if got := strings.TrimRight(recvProc.stdoutText(), "\n"); got != strings.ReplaceAll(text, "\n", `\n`) && got != text {
		t.Fatalf("python printed %q, want %q", got, text)
	}
	if err := sendProc.wait(t, classicTimeout); err != nil {
		t.Fatalf("send: %v\n%s", err, sendProc.output())
	}
	pySend, code := pythonSend(t, mailbox.URL, "to gander", "")
	recv := ganderReceive(t, mailbox.URL, code)
	if err := recv.wait(t, classicTimeout); err != nil || strings.TrimSpace(recv.stdoutText()) != "to gander" {
		t.Fatalf("gander receive: %v\n%s", err, recv.output())
	}
	if err := pySend.wait(t, classicTimeout); err != nil {
		t.Fatalf("python send: %v", err)
	}
}
