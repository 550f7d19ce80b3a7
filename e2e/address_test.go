package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
)

// An address change during a direct-path transfer: the machine gets a new
// address and loses the one the connection uses (a new network); the
// session must resume on the new address.

const (
	oldAddress = "10.203.0.1"
	newAddress = "10.203.0.2"
	// ownNetnsEnv marks the copy of the test binary that TestAddressChange
	// runs in a network namespace of its own.
	ownNetnsEnv = "GANDER_E2E_OWN_NETNS"
	// addressRecoveryBound is how long after the old address's removal
	// the probe may take to echo again.
	addressRecoveryBound = 20 * time.Second
)

// TestAddressChange adds an address to lo (so that the peers advertise it
// as their direct hint and connect through it), starts a bulk stream and a
// probe between two in-process gander peers, direct only, then adds a
// second address and removes the first. The other packages' tests run in
// parallel in ./e2e/test.sh's namespace and would see the addresses come
// and go, so the test runs itself again in a namespace of its own.
func TestAddressChange(t *testing.T) {
	if os.Getenv("GANDER_E2E_VENV") == "" {
		t.Skip("e2e: run ./e2e/test.sh")
	}
	if os.Geteuid() != 0 {
		t.Skip("changing the namespace's addresses needs root (./e2e/test.sh is root in its namespace)")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs ip (iproute2) to change addresses")
	}
	if os.Getenv(ownNetnsEnv) == "" {
		runInOwnNetns(t, ipCmd)
		return
	}

	mailbox := startMailbox(t) // before any address is added: venvBin checks there is none
	ip := func(args ...string) error {
		out, err := exec.Command(ipCmd, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() { // whatever happened; a missing address is no error here
		ip("addr", "del", oldAddress+"/32", "dev", "lo")
		ip("addr", "del", newAddress+"/32", "dev", "lo")
	})
	if err := ip("addr", "add", oldAddress+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}

	wa, code := joinGander(t, mailbox.URL, "")
	wb, _ := joinGander(t, mailbox.URL, code)
	var a, b *dilation.Conn
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = dilateGander(t, wa, dilation.Config{Side: leaderSide}) }()
	go func() { defer wg.Done(); b = dilateGander(t, wb, dilation.Config{Side: followerSide}) }()
	wg.Wait()
	if a == nil || b == nil {
		t.FailNow() // dilateGander said why
	}
	serveEcho(t, b)
	for _, c := range []*dilation.Conn{a, b} {
		if st := c.Status(); !strings.Contains(st.Via, oldAddress) || st.Relayed {
			t.Fatalf("connected via %q (relayed=%v), want a direct connection through %s", st.Via, st.Relayed, oldAddress)
		}
	}
	session := dilatedSession(a)
	pr := newProbe(t, mustOpen(t, session))
	if err := pr.roundTrip("before the change", 10*time.Second); err != nil {
		t.Fatalf("the probe before the change: %v", err)
	}
	bk := startBulk(t, mustOpen(t, session))
	session.closeAtCleanup(t)
	if err := bk.waitFlowing(20 * time.Second); err != nil {
		t.Fatal(err)
	}

	if err := ip("addr", "add", newAddress+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	if err := ip("addr", "del", oldAddress+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	firstByte, err := pr.recover(removed, addressRecoveryBound)
	if err != nil {
		t.Fatalf("no echo within %v of %s's removal: %v\nconnection: %s", addressRecoveryBound, oldAddress, err, session.describe())
	}
	t.Logf("address change: first probe echo %v after %s was removed; %s",
		firstByte.Round(time.Millisecond), oldAddress, session.brief())
	for _, c := range []*dilation.Conn{a, b} {
		if st := c.Status(); !strings.Contains(st.Via, newAddress) {
			t.Errorf("after the change connected via %q, want %s", st.Via, newAddress)
		}
	}
	time.Sleep(bulkAfterRecovery)
	n, err := bk.finish(bulkDrainBound)
	if err != nil {
		t.Fatalf("the bulk stream across the address change: %v\nconnection: %s", err, session.describe())
	}
	t.Logf("bulk stream: %d MiB echoed across the address change, sha256 equal", n>>20)
	if err := pr.roundTrip("after the change", 10*time.Second); err != nil {
		t.Fatalf("the probe after the change: %v", err)
	}
}

// runInOwnNetns runs this test again, alone, in a new network namespace
// with only lo up, and reports its output.
func runInOwnNetns(t *testing.T, ipCmd string) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare (util-linux) for a network namespace of its own")
	}
	t.Setenv(ownNetnsEnv, "1")
	p := startProcess(t, "", unshare, "--net", "--", "sh", "-c", `"$0" link set lo up && exec "$@"`, ipCmd,
		os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=4m")
	err = p.wait(t, 5*time.Minute)
	t.Logf("%s in its own network namespace:\n%s", t.Name(), p.stdoutText()+p.stderrText())
	if err != nil {
		t.Fatalf("%s in its own network namespace: %v", t.Name(), err)
	}
}
