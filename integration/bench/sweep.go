package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
)

// SweepPoint is one setting of dm-clone's copy: the region size, the
// bytes in flight (hydration_threshold regions) and the bytes per kcopyd
// request (hydration_batch_size regions).
type SweepPoint struct {
	RegionSectors uint64 `json:"regionSectors"`
	InFlightBytes uint64 `json:"inFlightBytes"`
	CopyBytes     uint64 `json:"copyBytes"`
}

// DefaultSweepPoint is what lunferry sends at full speed by default
// (plan.DefaultRegionSectors, clone.TunedFor).
func DefaultSweepPoint() SweepPoint {
	return SweepPoint{RegionSectors: plan.DefaultRegionSectors, InFlightBytes: clone.TunedInFlightBytes, CopyBytes: clone.TunedCopyBytes}
}

// Messages are the threshold and batch size the point asks for, in regions.
func (s SweepPoint) Messages() (threshold, batch uint) {
	rb := s.RegionSectors * dm.SectorSize
	return uint(max(s.InFlightBytes/rb, 1)), uint(max(s.CopyBytes/rb, 1))
}

// ID names the point in figure IDs: region, in flight and copy size in KiB.
func (s SweepPoint) ID() string {
	return fmt.Sprintf("r%d-f%d-c%d", s.RegionSectors*dm.SectorSize>>10, s.InFlightBytes>>10, s.CopyBytes>>10)
}

func (s SweepPoint) String() string {
	t, b := s.Messages()
	return fmt.Sprintf("region %s, %s in flight (threshold %d), %s copies (batch %d)",
		fmtBytes(s.RegionSectors*dm.SectorSize), fmtBytes(s.InFlightBytes), t, fmtBytes(s.CopyBytes), b)
}

func fmtBytes(n uint64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// sweepSample is what one point measured once.
type sweepSample struct {
	rate  float64 // hydration bytes/s with the host writing
	p99   float64 // host 4k write p99, ms
	valid bool    // hydration still ran when the host's job ended
}

// sweep measures, per point, unthrottled hydration of a fresh volume
// while the host writes 4k blocks at a fixed rate (each write to an
// unhydrated region waits for that region's copy), the points' order
// rotating with the repetition. Figures: the default's rate and p99, and
// every other point's as a ratio to the default's of the same repetition.
func (g *Guest) sweep(ctx context.Context) error {
	state := filepath.Join(g.dir, "state-sweep")
	pts := g.P.Sweep
	got := make([][]sweepSample, len(pts))
	n := 0
	for rep := 0; rep < g.P.SweepReps; rep++ {
		for k := range pts {
			i := (k + rep) % len(pts)
			n++
			s, err := g.sweepOnce(ctx, state, fmt.Sprintf("sw%d", n), pts[i])
			if err != nil {
				return err
			}
			got[i] = append(got[i], s)
		}
	}
	def := -1
	for i, p := range pts {
		if p == DefaultSweepPoint() {
			def = i
		}
	}
	if def < 0 {
		return fmt.Errorf("bench: sweep: the default point %s is not among the points", DefaultSweepPoint())
	}
	col := func(i int, f func(sweepSample) float64) []float64 {
		var v []float64
		for _, s := range got[i] {
			v = append(v, f(s))
		}
		return v
	}
	rate := func(s sweepSample) float64 { return s.rate / (1 << 20) }
	p99 := func(s sweepSample) float64 { return s.p99 }
	how := func(p SweepPoint) string {
		return fmt.Sprintf("%s; unthrottled hydration of %d MiB with the host writing 4k at %d IOPS (fio randwrite iodepth 1) through the export",
			p, g.P.LUNBytes>>20, g.P.LatencyIOPS)
	}
	valid := func(i int) string {
		v := 0
		for _, s := range got[i] {
			if s.valid {
				v++
			}
		}
		return fmt.Sprintf("hydration still ran at the end of the host's job in %d of %d runs", v, len(got[i]))
	}
	d := pts[def]
	f := NewFigure("sweep-rate-default", "hydration rate at the default copy settings, host writing", how(d), "MiB/s", Reported(), col(def, rate))
	f.Note = valid(def)
	g.figure(f)
	g.figure(NewFigure("sweep-p99-default", "host 4k write p99 during hydration at the default copy settings", how(d), "ms", Reported(), col(def, p99)))
	for i, p := range pts {
		if i == def {
			continue
		}
		f := RatioFigure("sweep-rate-"+p.ID(), fmt.Sprintf("hydration rate, %s / default", p), how(p), Reported(), col(i, rate), col(def, rate))
		f.Note = valid(i)
		g.figure(f)
		g.figure(RatioFigure("sweep-p99-"+p.ID(), fmt.Sprintf("host 4k write p99, %s / default", p), how(p), Reported(), col(i, p99), col(def, p99)))
	}
	return nil
}

// sweepOnce cuts a fresh volume over with the point's region size,
// enables hydration with the point's threshold and batch size, runs the
// host's write job, waits for the end and aborts.
func (g *Guest) sweepOnce(ctx context.Context, state, name string, p SweepPoint) (sweepSample, error) {
	var s sweepSample
	sp, err := g.spec(name, g.cfg.Arrays["old"], g.cfg.Arrays["new"], 0, "")
	if err != nil {
		return s, err
	}
	sp.RegionSectors = p.RegionSectors
	if err := g.cutover(ctx, state, sp); err != nil {
		return s, err
	}
	dev, err := g.hostDisk(sp.Export.IQN)
	if err != nil {
		return s, err
	}
	// Hydration is enabled by hand with the point's settings, not by
	// `migrate start` (which sends lunferry's own first); nothing changes
	// them after: no `run`, and abort does not mind.
	t, b := p.Messages()
	smp := startSampler(sp.Name, 20*time.Millisecond)
	start := time.Now()
	for _, m := range []string{dm.MsgHydrationBatchSize(b), dm.MsgHydrationThreshold(t), dm.MsgEnableHydration} {
		if out, err := exec.CommandContext(ctx, "dmsetup", "message", plan.DMName(sp.Name), "0", m).CombinedOutput(); err != nil {
			smp.halt()
			return s, fmt.Errorf("bench: sweep: dmsetup message %s: %w: %s", m, err, out)
		}
	}
	job := Job{Name: "sweepwrite", RW: "randwrite", BS: "4k", IODepth: 1, RateIOPS: g.P.LatencyIOPS}
	r, err := RunFio(ctx, dev, job, g.P.LatencyRuntime, 0, "")
	if err == nil && r.Errors != 0 {
		err = fmt.Errorf("bench: sweep: fio on %s: %d errors", dev, r.Errors)
	}
	if err != nil {
		smp.halt()
		return s, err
	}
	if last, ok := smp.last(); ok {
		s.valid = last.hydrated < last.total
	}
	err = smp.waitHydrated(ctx, 30*time.Minute)
	samples := smp.halt()
	if err != nil {
		return s, err
	}
	s.p99 = float64(r.P99.Microseconds()) / 1000
	if d := hydrationSpan(samples, start); d > 0 {
		s.rate = float64(g.P.LUNBytes) / d.Seconds()
	} else {
		return s, fmt.Errorf("bench: sweep %s: no hydration span in %d samples", p, len(samples))
	}
	fmt.Fprintf(g.out, "bench: sweep %s: hydration %.1f MiB/s, host write p99 %.2f ms (hydrating at the end: %v)\n",
		p, s.rate/(1<<20), s.p99, s.valid)
	return s, g.retire(ctx, state, sp, false)
}
