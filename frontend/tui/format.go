package tui

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/internal/sanitize"
)

// humanBytes formats n with SI units: "0 B", "999 B", "1.2 kB", "34 MB".
func humanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB", "PB"} {
		v /= 1000
		if v < 999.5 || unit == "PB" {
			if v < 9.95 {
				return fmt.Sprintf("%.1f %s", v, unit)
			}
			return fmt.Sprintf("%.0f %s", v, unit)
		}
	}
	panic("unreachable")
}

// humanRate formats bytes per second: "1.2 MB/s"; "–" for nothing moving.
func humanRate(perSecond float64) string {
	if perSecond < 1 {
		return "–"
	}
	return humanBytes(int64(perSecond)) + "/s"
}

// humanDuration formats an estimate: "42 s", "3 min 5 s", "2 h 10 min".
func humanDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	default:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	}
}

// verifierLines shows a verifier as fowl does, hex in groups of four, with
// at most perLine groups a line, so two people can read it to each other.
func verifierLines(v []byte, perLine int) []string {
	h := hex.EncodeToString(v)
	var lines []string
	var groups []string
	for len(h) > 0 {
		n := min(4, len(h))
		groups = append(groups, h[:n])
		h = h[n:]
		if len(groups) == perLine {
			lines = append(lines, strings.Join(groups, " "))
			groups = nil
		}
	}
	if len(groups) > 0 {
		lines = append(lines, strings.Join(groups, " "))
	}
	return lines
}

// fit cuts s (which may hold styles) to width cells, ending it with "…"
// if it was longer.
func fit(s string, width int) string {
	if width <= 0 {
		return ""
	}
	return ansi.Truncate(s, width, "…")
}

// pad cuts or pads s (which may hold styles) to exactly width cells.
func pad(s string, width int) string {
	s = fit(s, width)
	if w := ansi.StringWidth(s); w < width {
		s += strings.Repeat(" ", width-w)
	}
	return s
}

// clean is Sanitize for one line of peer-supplied text.
func clean(s string) string { return sanitize.Line(s) }

// errText is an error's message, sanitised: errors may quote the peer.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return clean(err.Error())
}

// wrap breaks s (which may hold styles) into lines of at most width
// cells, at spaces only: codes and file names hold hyphens. A word longer
// than a line is cut.
func wrap(s string, width int) string {
	width = max(1, width)
	var b strings.Builder
	for i, para := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		used := 0
		for j, word := range strings.Split(para, " ") {
			w := ansi.StringWidth(word)
			if j > 0 {
				if used+1+w <= width {
					b.WriteByte(' ')
					used++
				} else {
					b.WriteByte('\n')
					used = 0
				}
			}
			if w > width {
				word = ansi.Hardwrap(word, width, false)
				w = ansi.StringWidth(word[strings.LastIndexByte(word, '\n')+1:])
				used = 0
			}
			b.WriteString(word)
			used += w
		}
	}
	// Carry styles over the line breaks, as lipgloss.Wrap does.
	var out bytes.Buffer
	ww := lipgloss.NewWrapWriter(&out)
	io.WriteString(ww, b.String())
	ww.Close()
	return out.String()
}

// Smoothing of transfer rates: progress comes every TrafficInterval, but
// what moved in one interval jumps with the link's bursts (a steady
// 10 MiB/s read 5.8 and 44 MB/s at 200 ms). An exponentially weighted
// average over about rateTau, weighting each sample by the time it
// covers, reads steady while still following a real change within a few
// seconds.
const (
	rateTau = 1500 * time.Millisecond
	// rateMinGap: samples closer than this are folded into the next one
	// (a burst of events would otherwise weigh nothing, or divide by ~0).
	rateMinGap = 100 * time.Millisecond
)

// smoothRate is a byte counter's smoothed rate; the zero value is ready.
type smoothRate struct {
	at     time.Time // the last sample used
	bytes  int64
	perSec float64
	primed bool // perSec holds a measurement
}

// sample takes the counter's value at now.
func (r *smoothRate) sample(bytes int64, now time.Time) {
	if r.at.IsZero() || bytes < r.bytes {
		r.at, r.bytes, r.perSec, r.primed = now, bytes, 0, false
		return
	}
	dt := now.Sub(r.at)
	if dt < rateMinGap {
		return
	}
	instant := float64(bytes-r.bytes) / dt.Seconds()
	if !r.primed {
		r.perSec, r.primed = instant, true
	} else {
		w := 1 - math.Exp(-dt.Seconds()/rateTau.Seconds())
		r.perSec += w * (instant - r.perSec)
	}
	r.at, r.bytes = now, bytes
}

// expire zeroes a rate not sampled for staleAfter and reports whether
// it still moves.
func (r *smoothRate) expire(now time.Time) (moving bool) {
	if !r.at.IsZero() && now.Sub(r.at) >= staleAfter {
		r.perSec, r.primed = 0, false
	}
	return r.perSec > 0
}

// eta is the time left for left bytes at the smoothed rate (false: no
// rate to tell).
func (r *smoothRate) eta(left int64) (time.Duration, bool) {
	if r.perSec < 1 || left <= 0 {
		return 0, false
	}
	return time.Duration(float64(left) / r.perSec * float64(time.Second)), true
}
