package lab

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PhasesFile is the lab's phase log: one line "<time, RFC 3339> <phase>"
// per phase start, written by the online hooks and the tests.
func (c *Config) PhasesFile() string { return filepath.Join(c.Dir, "phases.txt") }

// LatencyFile is the per-file write latency log of a writer session.
func (c *Config) LatencyFile(session int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("writer-%d.lat", session))
}

// Mark records that phase starts now (appended and fsynced: a multi-boot
// test reads it after a power cut).
func (c *Config) Mark(phase string) error {
	if phase == "" || strings.ContainsAny(phase, " \n") {
		return fmt.Errorf("lab: phase %q: want one word", phase)
	}
	f, err := os.OpenFile(c.PhasesFile(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: mark: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), phase)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("lab: mark: %w", err)
	}
	return nil
}

// PhaseStall is the host's longest write in one phase.
type PhaseStall struct {
	// Phase is the phase's name, Start when it began.
	Phase string
	Start time.Time
	// Writes counts the files whose write ended in the phase; Max is the
	// longest write+fsync among them, ending at MaxAt.
	Writes int
	Max    time.Duration
	MaxAt  time.Time
}

// timed is one line of a phase or latency log.
type timed struct {
	at    time.Time
	field string
}

// readTimed reads "<RFC 3339> <field>" lines; a torn last line (power
// cut) is skipped.
func readTimed(path string) ([]timed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	var out []timed
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ts, field, ok := strings.Cut(sc.Text(), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if ok && err == nil && field != "" {
			out = append(out, timed{at, field})
		}
	}
	return out, sc.Err()
}

// PhaseStalls splits every writer session's latency log by the phase
// marks: each write counts for the last phase that started before it
// ended (writes before the first mark count for none).
func (c *Config) PhaseStalls() ([]PhaseStall, error) {
	marks, err := readTimed(c.PhasesFile())
	if err != nil {
		return nil, err
	}
	out := make([]PhaseStall, len(marks))
	for i, m := range marks {
		out[i] = PhaseStall{Phase: m.field, Start: m.at}
	}
	lats, _ := filepath.Glob(filepath.Join(c.Dir, "writer-*.lat"))
	for _, p := range lats {
		ws, err := readTimed(p)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			ms, err := strconv.ParseFloat(w.field, 64)
			i := sort.Search(len(out), func(i int) bool { return out[i].Start.After(w.at) }) - 1
			if err != nil || i < 0 {
				continue
			}
			out[i].Writes++
			if d := time.Duration(ms * float64(time.Millisecond)); d > out[i].Max {
				out[i].Max, out[i].MaxAt = d, w.at
			}
		}
	}
	return out, nil
}

// FormatStalls renders stalls one phase a line, for logs and the demo.
func FormatStalls(stalls []PhaseStall) string {
	var b strings.Builder
	for _, s := range stalls {
		fmt.Fprintf(&b, "%-22s %5d writes, longest %8.1f ms", s.Phase, s.Writes, float64(s.Max.Microseconds())/1000)
		if !s.MaxAt.IsZero() {
			fmt.Fprintf(&b, " (ended %s)", s.MaxAt.Format("15:04:05.000"))
		}
		b.WriteByte('\n')
	}
	return b.String()
}
