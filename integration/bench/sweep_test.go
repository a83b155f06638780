package bench

import (
	"slices"
	"testing"
)

func TestSweepPoints(t *testing.T) {
	for _, p := range []Params{FullParams(), SmokeParams()} {
		if !slices.Contains(p.Sweep, DefaultSweepPoint()) {
			t.Errorf("%s sweep lacks the default point %s", p.Mode, DefaultSweepPoint())
		}
		ids := map[string]bool{}
		for _, pt := range p.Sweep {
			if ids[pt.ID()] {
				t.Errorf("%s sweep: point %s twice", p.Mode, pt.ID())
			}
			ids[pt.ID()] = true
		}
	}
	for _, c := range []struct {
		p                SweepPoint
		threshold, batch uint
		id               string
	}{
		{DefaultSweepPoint(), 64, 16, "r64-f4096-c1024"},
		{SweepPoint{RegionSectors: 8, InFlightBytes: 16 << 20, CopyBytes: 1 << 20}, 4096, 256, "r4-f16384-c1024"},
		// A region bigger than a copy: one region a request, never 0.
		{SweepPoint{RegionSectors: 4096, InFlightBytes: 1 << 20, CopyBytes: 1 << 20}, 1, 1, "r2048-f1024-c1024"},
	} {
		th, b := c.p.Messages()
		if th != c.threshold || b != c.batch || c.p.ID() != c.id {
			t.Errorf("%s: threshold %d batch %d id %s, want %d %d %s", c.p, th, b, c.p.ID(), c.threshold, c.batch, c.id)
		}
	}
}
