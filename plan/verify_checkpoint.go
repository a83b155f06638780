package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/lunferry/lunferry/clone"
)

// A verify that stops (killed, rebooted, a read error, ^C) leaves a
// checkpoint: how far its comparison of the old and the new LUN got and
// what it found there. The next verify of the same migration, at the same
// step and between the same LUNs, resumes from it instead of reading
// everything again; the blocks the host wrote since cutover are read from
// the era again, so writes made between the two runs are still set apart.

// verifyCheckpointVersion is the checkpoint file's format.
const verifyCheckpointVersion = 1

// checkpointEvery is how often a running comparison saves its checkpoint.
const checkpointEvery = 2 * time.Second

// verifyCheckpoint is a verify's progress, saved in
// <state>/verify/<volume>.json.
type verifyCheckpoint struct {
	Version     int       `json:"version"`
	CutOverAt   time.Time `json:"cutOverAt"`
	Step        Step      `json:"step"`
	Old         string    `json:"old"`
	New         string    `json:"new"`
	HostStopped bool      `json:"hostStopped"`
	Saved       time.Time `json:"saved"`
	// Result is the comparison so far; its Next is where it resumes.
	Result clone.VerifyResult `json:"result"`
}

func (s Store) verifyCheckpointPath(name string) string {
	return filepath.Join(s.Dir, "verify", name+".json")
}

// diskKey names a LUN across reboots: its WWID, or its path when unknown.
func diskKey(d *Disk) string {
	if d.ID != "" {
		return d.ID
	}
	return d.Path
}

// newVerifyCheckpoint is the checkpoint a verify of v would save.
func newVerifyCheckpoint(v *Volume, hostStopped bool) verifyCheckpoint {
	return verifyCheckpoint{Version: verifyCheckpointVersion, CutOverAt: v.CutOverAt, Step: v.Step,
		Old: diskKey(v.OldDisk), New: diskKey(v.NewDisk), HostStopped: hostStopped}
}

// loadVerifyCheckpoint returns the checkpoint of volume name that want
// (the same migration, step, LUNs and host-stopped word) can resume, or
// nil and, when one was there but does not fit, why it is not resumed.
func (s Store) loadVerifyCheckpoint(name string, want verifyCheckpoint) (*verifyCheckpoint, string) {
	b, err := os.ReadFile(s.verifyCheckpointPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ""
	}
	if err != nil {
		return nil, fmt.Sprintf("the checkpoint of an earlier verify could not be read (%v): compared from the start", err)
	}
	var c verifyCheckpoint
	if err := json.Unmarshal(b, &c); err != nil || c.Version != verifyCheckpointVersion {
		return nil, "the checkpoint of an earlier verify is not one this lunferry writes: compared from the start"
	}
	switch {
	case !c.CutOverAt.Equal(want.CutOverAt) || c.Old != want.Old || c.New != want.New:
		return nil, "the checkpoint of an earlier verify belongs to another migration: compared from the start"
	case c.Step != want.Step:
		return nil, fmt.Sprintf("the earlier verify stopped at step %s, the volume is at %s now: compared from the start", c.Step, want.Step)
	case c.HostStopped != want.HostStopped:
		return nil, "the earlier verify was run with a different --host-stopped: compared from the start"
	}
	return &c, ""
}

func (s Store) saveVerifyCheckpoint(name string, c verifyCheckpoint) error {
	p := s.verifyCheckpointPath(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	return writeFileAtomic(p, b)
}

func (s Store) removeVerifyCheckpoint(name string) error {
	if err := os.Remove(s.verifyCheckpointPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("plan: %w", err)
	}
	return nil
}

// resumed adds the result a checkpoint holds to the comparison that
// resumed it: one result as if nothing had stopped.
func resumed(before, now clone.VerifyResult) clone.VerifyResult {
	r := now
	r.Compared += before.Compared
	r.Total += before.Compared
	r.MismatchedBytes += before.MismatchedBytes
	r.Duration += before.Duration
	r.Mismatches = append(append([]clone.Extent(nil), before.Mismatches...), now.Mismatches...)
	if len(r.Mismatches) > clone.DefaultMaxMismatches {
		r.Mismatches = r.Mismatches[:clone.DefaultMaxMismatches]
	}
	return r
}
