package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
)

// A transfer is written under a hidden partial name that says which
// process writes it, ".NAME.gander-partial-PID-START-RANDOM", START being
// when that process started as the kernel counts it. A partial whose
// process is gone was left by a crash or a SIGKILL: RemoveStalePartials
// finds it by that name, and leaves alone those of a gander still running
// (a new process that reused the pid has another START).
var (
	partialPattern = regexp.MustCompile(`^\..*\.gander-partial-([0-9]+)-([0-9a-z]+)-[0-9a-f]{8}$`)
	// legacyPartial is how gander named partials before it said whose
	// they were: nothing tells whether their writer still runs.
	legacyPartial = regexp.MustCompile(`^\..*\.gander-partial-[0-9a-f]{8}$`)
)

// self is this process as partial names name it.
var self = struct {
	pid   int
	start string
}{os.Getpid(), processStart(os.Getpid())}

// partialSuffix is the end of a new partial's name.
func partialSuffix() string {
	return fmt.Sprintf("%d-%s-%08x", self.pid, self.start, rand.Uint32())
}

// StalePartials is what RemoveStalePartials found in a directory.
type StalePartials struct {
	Removed []string // names of partials whose gander is gone, now removed
	// Unknown are partials of an older gander that cannot say whether it
	// still runs: reported, not removed.
	Unknown []string
}

// RemoveStalePartials removes from dir the partial files and directories
// left by a gander that no longer runs, and lists what it removed and the
// older partials it could not judge. It never follows a link out of dir.
func RemoveStalePartials(dir string) (StalePartials, error) {
	var found StalePartials
	root, err := os.OpenRoot(dir)
	if err != nil {
		return found, err
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return found, err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		m := partialPattern.FindStringSubmatch(name)
		switch {
		case m != nil:
			pid, err := strconv.Atoi(m[1])
			if err != nil || processRuns(pid, m[2]) {
				continue
			}
			if err := root.RemoveAll(name); err != nil {
				errs = append(errs, err)
				continue
			}
			found.Removed = append(found.Removed, name)
		case legacyPartial.MatchString(name):
			found.Unknown = append(found.Unknown, name)
		}
	}
	return found, errors.Join(errs...)
}
