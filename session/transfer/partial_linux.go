package transfer

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
)

// processStart is when process pid started, in clock ticks after boot
// (field 22 of /proc/PID/stat), or "0" if that cannot be read.
func processStart(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "0"
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// from the last ')'.
	fields := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+1:])
	if len(fields) < 20 {
		return "0"
	}
	return string(fields[19])
}

// processRuns reports whether the process pid that started at start still
// runs. When in doubt it says yes: a live transfer must not be removed.
func processRuns(pid int, start string) bool {
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, fs.ErrNotExist) {
		return false
	}
	now := processStart(pid)
	return now == start || now == "0"
}
