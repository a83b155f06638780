package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/plan"
)

// progressLine rewrites one terminal line with a long job's progress (bar,
// bytes, rate since the start, ETA), at most every progressEvery and once
// more when done.
type progressLine struct {
	w     io.Writer
	label string
	now   func() time.Time
	start time.Time
	last  time.Time
	shown bool
}

// progressEvery is how often a progress line is rewritten.
const progressEvery = 500 * time.Millisecond

func newProgressLine(w io.Writer, label string, now func() time.Time) *progressLine {
	return &progressLine{w: w, label: label, now: now, start: now()}
}

// update shows done of total bytes.
func (p *progressLine) update(done, total uint64) {
	now := p.now()
	if p.shown && done < total && now.Sub(p.last) < progressEvery {
		return
	}
	p.last, p.shown = now, true
	frac, rate, eta := 0.0, 0.0, time.Duration(0)
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	if el := now.Sub(p.start).Seconds(); el > 0 {
		rate = float64(done) / el
	}
	if rate > 0 && done < total {
		eta = time.Duration(float64(total-done) / rate * float64(time.Second))
	}
	fmt.Fprintf(p.w, "\r%s %s %5.1f%% %s of %s, %s, ETA %s\x1b[K", p.label, bar(frac, 20), 100*frac,
		plan.Bytes(done), plan.Bytes(total), fmtRate(rate), fmtDur(eta))
}

// end ends the line, if one was shown.
func (p *progressLine) end() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a terminal (a progress line rewrites
// itself there; in a file or pipe it would not).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
