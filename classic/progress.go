package classic

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress is one line on stderr, redrawn at most every progressInterval:
// a bar, the bytes done, the rate and the time left. Written here rather
// than taken from a library: it is forty lines, writes only to the writer
// given (never the terminal directly), and needs no terminal size.
type progress struct {
	mu       sync.Mutex
	w        io.Writer // nil: hidden
	total    int64
	done     int64
	start    time.Time
	lastDraw time.Time
}

const progressInterval = 250 * time.Millisecond

func newProgress(w io.Writer, total int64, hidden bool) *progress {
	if hidden {
		w = nil
	}
	return &progress{w: w, total: total, start: time.Now()}
}

func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += int64(n)
	if p.w != nil && time.Since(p.lastDraw) >= progressInterval {
		p.draw("\r")
	}
}

// finish draws the last state and ends the line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		p.draw("\r")
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw(prefix string) {
	p.lastDraw = time.Now()
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	frac := 1.0
	if p.total > 0 {
		frac = min(1, float64(p.done)/float64(p.total))
	}
	const width = 30
	filled := int(frac * width)
	eta := "--:--"
	if rate > 0 && p.total >= p.done {
		eta = clock(time.Duration(float64(p.total-p.done) / rate * float64(time.Second)))
	}
	fmt.Fprintf(p.w, "%s%3.0f%% |%s%s| %s/%s %s/s ETA %s ", prefix, frac*100,
		strings.Repeat("█", filled), strings.Repeat(" ", width-filled),
		size(p.done), size(p.total), size(int64(rate)), eta)
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// size is n bytes for people: 512 B, 1.5 MB (decimal, as the reference's
// naturalsize).
func size(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
