package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lunferry/lunferry/plan"
)

// cycleB is what one repetition of the load cycle measured.
type cycleB struct {
	idleP99, hydP99 float64 // ms
	during, after   map[string]float64
	// valid: hydration still ran when the job ended.
	valid map[string]bool
	// latStart is when the latency job started during hydration, since
	// the sampler's start.
	latStart time.Duration
	series   []Series
}

// loadCycles measures, per repetition of a fresh volume: the host's
// fixed-rate 4k randread p99 with hydration off (cut over, not started)
// and during unthrottled hydration (d); every host job during hydration
// and after finalize (c).
func (g *Guest) loadCycles(ctx context.Context) error {
	state := filepath.Join(g.dir, "state-load")
	var cs []cycleB
	for i := 0; i < g.P.Reps; i++ {
		c, err := g.cycleB(ctx, state, i)
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	g.emitCycleB(cs)
	return nil
}

func (g *Guest) emitCycleB(cs []cycleB) {
	var idle, hyd []float64
	for _, c := range cs {
		idle, hyd = append(idle, c.idleP99), append(hyd, c.hydP99)
	}
	lat := RatioFigure("latency-p99", "host p99 latency during hydration / idle",
		fmt.Sprintf("fio 4k randread at %d IOPS through the export; idle: cut over, hydration not started", g.P.LatencyIOPS),
		AtMost(1.5), hyd, idle)
	lat.Note = "hydration unthrottled here; the goal assumes the adaptive throttle: see latency-p99-adaptive"
	g.figure(lat)
	for _, j := range HostJobs {
		var d, a []float64
		valid := 0
		for _, c := range cs {
			d, a = append(d, c.during[j.Name]), append(a, c.after[j.Name])
			if c.valid[j.Name] {
				valid++
			}
		}
		f := RatioFigure("hostio-hydrating-"+j.Name, "host "+j.Name+" during unthrottled hydration / after finalize",
			fioHow(j)+" through the export", AtLeast(0.6), d, a)
		f.Note = fmt.Sprintf("hydration still ran at the end of the job in %d of %d runs", valid, len(cs))
		g.figure(f)
	}
	if len(cs) > 0 {
		for i := range cs[0].series {
			g.emit(Record{Series: &cs[0].series[i]})
		}
	}
}

func (g *Guest) cycleB(ctx context.Context, state string, i int) (cycleB, error) {
	c := cycleB{during: map[string]float64{}, after: map[string]float64{}, valid: map[string]bool{}}
	sp, err := g.spec(fmt.Sprintf("l%d", i), g.cfg.Arrays["old"], g.cfg.Arrays["new"], 0, "")
	if err != nil {
		return c, err
	}
	if err := g.cutover(ctx, state, sp); err != nil {
		return c, err
	}
	dev, err := g.hostDisk(sp.Export.IQN)
	if err != nil {
		return c, err
	}
	idleLog := filepath.Join(g.dir, sp.Name+"-lat-idle")
	r, err := RunFio(ctx, dev, LatencyJob(g.P.LatencyIOPS), g.P.LatencyRuntime, 0, idleLog)
	if err != nil {
		return c, err
	}
	c.idleP99 = float64(r.P99.Microseconds()) / 1000
	start := time.Now()
	s := startSampler(sp.Name, 100*time.Millisecond)
	err = g.duringHydration(ctx, state, sp, dev, s, &c)
	if err == nil {
		err = s.waitHydrated(ctx, 30*time.Minute)
	}
	samples := s.halt()
	if err != nil {
		return c, err
	}
	if err := g.seriesB(&c, sp.Name, samples, start); err != nil {
		return c, err
	}
	if _, err := g.lf(ctx, state, "migrate", "finalize", sp.Name); err != nil {
		return c, err
	}
	for _, j := range HostJobs {
		r, err := RunFio(ctx, dev, j, g.P.FioRuntime, g.P.FioRamp, "")
		if err != nil {
			return c, err
		}
		c.after[j.Name] = r.BytesPerSec
	}
	fmt.Fprintf(g.out, "bench: load cycle %d: p99 idle %.2f ms, hydrating %.2f ms; during %v after %v valid %v\n",
		i, c.idleP99, c.hydP99, c.during, c.after, c.valid)
	return c, g.retire(ctx, state, sp, true)
}

// duringHydration starts hydration and runs the latency job, then every
// host job, noting whether hydration still ran when each ended.
func (g *Guest) duringHydration(ctx context.Context, state string, sp plan.Spec, dev string, s *sampler, c *cycleB) error {
	if _, err := g.lf(ctx, state, "migrate", "start", sp.Name); err != nil {
		return err
	}
	c.latStart = time.Since(s.start)
	r, err := RunFio(ctx, dev, LatencyJob(g.P.LatencyIOPS), g.P.LatencyRuntime, 0, filepath.Join(g.dir, sp.Name+"-lat-hyd"))
	if err != nil {
		return err
	}
	c.hydP99 = float64(r.P99.Microseconds()) / 1000
	for _, j := range HostJobs {
		r, err := RunFio(ctx, dev, j, g.P.FioRuntime, g.P.FioRamp, "")
		if err != nil {
			return err
		}
		c.during[j.Name] = r.BytesPerSec
		p, _ := s.last()
		c.valid[j.Name] = p.hydrated < p.total
	}
	return nil
}

// seriesB keeps rep's time series: hydration rate with host I/O, host
// read latency during hydration and idle.
func (g *Guest) seriesB(c *cycleB, name string, samples []progressSample, start time.Time) error {
	hyd, err := LatencySeries(filepath.Join(g.dir, name+"-lat-hyd_clat.1.log"), 250*time.Millisecond, c.latStart)
	if err != nil {
		return err
	}
	idle, err := LatencySeries(filepath.Join(g.dir, name+"-lat-idle_clat.1.log"), 250*time.Millisecond, c.latStart)
	if err != nil {
		return err
	}
	c.series = []Series{
		{ID: "hydration-with-host", Title: "hydration with host I/O", Unit: "MiB/s", Points: rateSeries(samples, start, time.Second)},
		{ID: "latency-hydrating", Title: fmt.Sprintf("host 4k read latency at %d IOPS, hydrating", g.P.LatencyIOPS), Unit: "ms", Points: hyd},
		{ID: "latency-idle", Title: "same, hydration off (measured before, shifted)", Unit: "ms", Points: idle},
	}
	return nil
}
