package lab

import (
	"os"
	"testing"
	"time"
)

func TestPhaseStallsSplitsWritesByMarks(t *testing.T) {
	c := &Config{Dir: t.TempDir()}
	t0 := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	at := func(s float64) string {
		return t0.Add(time.Duration(s * float64(time.Second))).Format(time.RFC3339Nano)
	}
	phases := at(1) + " direct\n" + at(10) + " paths-added\n" + at(20) + " taken-over\n" + "2026-12-02T01:00:3"
	lat1 := at(0.5) + " 900.0\n" + at(2) + " 12.5\n" + at(11) + " 40.0\n" + at(12) + " 7.0\n"
	lat2 := at(21) + " 250.25\n" + at(22) + " garbage\n"
	for p, b := range map[string]string{c.PhasesFile(): phases, c.LatencyFile(1): lat1, c.LatencyFile(2): lat2} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.PhaseStalls()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		phase  string
		writes int
		max    time.Duration
	}{{"direct", 1, 12500 * time.Microsecond}, {"paths-added", 2, 40 * time.Millisecond}, {"taken-over", 1, 250250 * time.Microsecond}}
	if len(got) != len(want) {
		t.Fatalf("PhaseStalls: %+v", got)
	}
	for i, w := range want {
		if got[i].Phase != w.phase || got[i].Writes != w.writes || got[i].Max != w.max {
			t.Errorf("phase %d: got %s %d writes max %s, want %s %d max %s", i, got[i].Phase, got[i].Writes, got[i].Max, w.phase, w.writes, w.max)
		}
	}
}

func TestMarkRefusesPhasesWithSpaces(t *testing.T) {
	c := &Config{Dir: t.TempDir()}
	if err := c.Mark("two words"); err == nil {
		t.Fatal("Mark accepted a phase with a space")
	}
	if err := c.Mark("taken-over"); err != nil {
		t.Fatal(err)
	}
}
