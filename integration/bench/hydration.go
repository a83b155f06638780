package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/plan"
)

// paths are the host's three ways to a LUN of the same kind after
// finalize: lunferry's export, the hand-built two-hop pass-through, the
// array directly.
var paths = []string{"export", "twohop", "direct"}

// cycleA is what one repetition of the hydration cycle measured.
type cycleA struct {
	hydration, raw  float64 // bytes/s
	gap, idleGap    float64 // ms
	swapHeld        float64 // ms, lunferry's own
	finalizeCovered bool
	bw              map[string]map[string]float64 // path → job → bytes/s
	alone           []Point
}

// hydrationCycles measures, per repetition: (a) unthrottled hydration of
// a fresh volume then the best raw copy of the same LUN; (e) finalize
// under fio; (b) host I/O through the export, the two-hop path and the
// array directly, interleaved.
func (g *Guest) hydrationCycles(ctx context.Context) (err error) {
	state := filepath.Join(g.dir, "state-hydration")
	// The host's sessions to the two-hop and direct paths serve every
	// cycle (hostIOPaths) and no other group.
	defer func() {
		err = errors.Join(err, g.cfg.Host.Logout(g.cfg.ExportPortal, g.twohopIQN),
			g.cfg.Host.Logout(lab.NewPortal, g.cfg.Arrays["scratch"].IQN))
	}()
	var cs []cycleA
	for i := 0; i < g.P.Reps; i++ {
		c, err := g.cycleA(ctx, state, i)
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	g.emitCycleA(cs)
	return nil
}

func (g *Guest) emitCycleA(cs []cycleA) {
	col := func(f func(c cycleA) float64) []float64 {
		var v []float64
		for _, c := range cs {
			v = append(v, f(c))
		}
		return v
	}
	mib := g.P.LUNBytes >> 20
	g.figure(RatioFigure("hydration", "hydration rate / best raw copy",
		fmt.Sprintf("unthrottled hydration of %d MiB, no host I/O, vs the faster of one dd O_DIRECT 1 MiB and 4 parallel dd over quarters, old → scratch LUN over the same portals", mib),
		AtLeast(0.9), col(func(c cycleA) float64 { return c.hydration }), col(func(c cycleA) float64 { return c.raw })))
	for _, j := range HostJobs {
		bw := func(p string) []float64 { return col(func(c cycleA) float64 { return c.bw[p][j.Name] }) }
		g.figure(RatioFigure("hostio-export-twohop-"+j.Name, "host "+j.Name+" via export / two-hop, after finalize",
			fioHow(j)+"; two-hop: LIO iblock over the proxy's own session to a LUN of the same kind, no dm", AtLeast(0.95), bw("export"), bw("twohop")))
		g.figure(RatioFigure("hostio-export-direct-"+j.Name, "host "+j.Name+" via export / direct to the array, after finalize",
			fioHow(j)+"; direct: the host's own session to the array", Reported(), bw("export"), bw("direct")))
	}
	gap := NewFigure("finalize-hold", "finalize's hold (longest completion gap across the swap)",
		"fio 4k randread iodepth 1 through the export while `migrate finalize` runs", "ms", AtMost(100), col(func(c cycleA) float64 { return c.gap }))
	covered := 0
	for _, c := range cs {
		if c.finalizeCovered {
			covered++
		}
	}
	gap.Note = fmt.Sprintf("the same job without finalize: longest gap %s ms (median); fio covered the whole finalize in %d of %d runs",
		fmtSummary(Summarize(col(func(c cycleA) float64 { return c.idleGap }))), covered, len(cs))
	g.figure(gap)
	g.figure(NewFigure("finalize-swap-held", "finalize's hold as lunferry reports it (swapHeld)", "`migrate status --json` after finalize",
		"ms", AtMost(100), col(func(c cycleA) float64 { return c.swapHeld })))
	if len(cs) > 0 {
		g.emit(Record{Series: &Series{ID: "hydration-alone", Title: "hydration alone (no host I/O)", Unit: "MiB/s", Points: cs[0].alone}})
	}
}

func fmtSummary(s Summary) string {
	return fmt.Sprintf("%.3g [%.3g–%.3g]", s.Median, s.Min, s.Max)
}

func fioHow(j Job) string {
	return fmt.Sprintf("fio %s bs %s iodepth %d, libaio, O_DIRECT", j.RW, j.BS, j.IODepth)
}

func (g *Guest) cycleA(ctx context.Context, state string, i int) (cycleA, error) {
	c := cycleA{bw: map[string]map[string]float64{}}
	sp, err := g.spec(fmt.Sprintf("h%d", i), g.cfg.Arrays["old"], g.cfg.Arrays["new"], 0, "")
	if err != nil {
		return c, err
	}
	if err := g.cutover(ctx, state, sp); err != nil {
		return c, err
	}
	start := time.Now()
	s := startSampler(sp.Name, 100*time.Millisecond)
	if _, err := g.lf(ctx, state, "migrate", "start", sp.Name); err != nil {
		s.halt()
		return c, err
	}
	err = s.waitHydrated(ctx, 30*time.Minute)
	samples := s.halt()
	if err != nil {
		return c, err
	}
	if d := hydrationSpan(samples, start); d > 0 {
		c.hydration = float64(g.P.LUNBytes) / d.Seconds()
	}
	c.alone = rateSeries(samples, start, time.Second)
	if err := g.finalizeUnderFio(ctx, state, sp, &c); err != nil {
		return c, err
	}
	if err := g.hostIOPaths(ctx, sp, i, &c); err != nil {
		return c, err
	}
	if err := g.retire(ctx, state, sp, true); err != nil {
		return c, err
	}
	c.raw, err = g.rawCopy(ctx)
	fmt.Fprintf(g.out, "bench: cycle %d: hydration %.1f MiB/s, raw copy %.1f MiB/s, hold %.0f ms (idle %.0f ms), swapHeld %.0f ms\n",
		i, c.hydration/(1<<20), c.raw/(1<<20), c.gap, c.idleGap, c.swapHeld)
	return c, err
}

// finalizeUnderFio runs fio 4k randread (iodepth 1, every completion
// logged) through the export once without and once across finalize, and
// keeps the longest completion gaps and lunferry's swapHeld.
func (g *Guest) finalizeUnderFio(ctx context.Context, state string, sp plan.Spec, c *cycleA) error {
	dev, err := g.hostDisk(sp.Export.IQN)
	if err != nil {
		return err
	}
	job := Job{Name: "hold", RW: "randread", BS: "4k", IODepth: 1}
	idle := filepath.Join(g.dir, sp.Name+"-idle")
	if _, err := RunFio(ctx, dev, job, g.P.HoldRuntime, 0, idle); err != nil {
		return err
	}
	gap, _, err := LongestGap(idle + "_clat.1.log")
	if err != nil {
		return err
	}
	c.idleGap = float64(gap.Microseconds()) / 1000
	swap := filepath.Join(g.dir, sp.Name+"-swap")
	var wg sync.WaitGroup
	var fioErr error
	wg.Add(1)
	go func() { defer wg.Done(); _, fioErr = RunFio(ctx, dev, job, g.P.HoldRuntime, 0, swap) }()
	time.Sleep(g.P.HoldRuntime / 4)
	fstart := time.Now()
	_, ferr := g.lf(ctx, state, "migrate", "finalize", sp.Name)
	c.finalizeCovered = time.Since(fstart) < g.P.HoldRuntime*3/4
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	if fioErr != nil {
		return fioErr
	}
	if gap, _, err = LongestGap(swap + "_clat.1.log"); err != nil {
		return err
	}
	c.gap = float64(gap.Microseconds()) / 1000
	held, err := g.swapHeld(ctx, state, sp.Name)
	c.swapHeld = float64(held.Microseconds()) / 1000
	return err
}

func (g *Guest) swapHeld(ctx context.Context, state, name string) (time.Duration, error) {
	out, err := g.lf(ctx, state, "--json", "migrate", "status", name)
	if err != nil {
		return 0, err
	}
	var rep plan.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		return 0, fmt.Errorf("bench: status --json: %w", err)
	}
	for _, v := range rep.Volumes {
		if v.Name == name {
			return v.SwapHeld.D(), nil
		}
	}
	return 0, fmt.Errorf("bench: status --json: no volume %s", name)
}

// hostIOPaths runs every host job on the three paths, the paths' order
// rotating with the repetition (no path always runs first).
func (g *Guest) hostIOPaths(ctx context.Context, sp plan.Spec, rep int, c *cycleA) error {
	devs := map[string]string{}
	var err error
	if devs["export"], err = g.hostDisk(sp.Export.IQN); err != nil {
		return err
	}
	if devs["twohop"], err = g.cfg.Host.Login(g.cfg.ExportPortal, g.twohopIQN, time.Minute); err != nil {
		return err
	}
	if devs["direct"], err = g.cfg.Host.Login(lab.NewPortal, g.cfg.Arrays["scratch"].IQN, time.Minute); err != nil {
		return err
	}
	for _, j := range HostJobs {
		for k := range paths {
			p := paths[(k+rep)%len(paths)]
			r, err := RunFio(ctx, devs[p], j, g.P.FioRuntime, g.P.FioRamp, "")
			if err != nil {
				return err
			}
			if c.bw[p] == nil {
				c.bw[p] = map[string]float64{}
			}
			c.bw[p][j.Name] = r.BytesPerSec
		}
	}
	return nil
}

// rawCopy copies the old LUN to the scratch LUN through the proxy's own
// sessions, once with one dd and once with four over quarters, and
// returns the faster rate.
func (g *Guest) rawCopy(ctx context.Context) (float64, error) {
	old := g.cfg.Arrays["old"]
	src, err := g.proxy.Login(old.Portals[0], old.IQN, time.Minute)
	if err != nil {
		return 0, err
	}
	defer g.proxy.Logout(old.Portals[0], old.IQN)
	mib := g.P.LUNBytes >> 20
	best := 0.0
	for _, n := range []int64{1, 4} {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for q := int64(0); q < n; q++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				part := mib / n
				out, err := exec.CommandContext(ctx, "dd", "if="+src, "of="+g.scratchDisk, "bs=1M", "iflag=direct", "oflag=direct",
					fmt.Sprintf("count=%d", part), fmt.Sprintf("skip=%d", q*part), fmt.Sprintf("seek=%d", q*part)).CombinedOutput()
				if err != nil {
					errs[q] = fmt.Errorf("bench: dd: %w: %s", err, out)
				}
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				return 0, e
			}
		}
		best = max(best, float64(g.P.LUNBytes)/time.Since(start).Seconds())
	}
	return best, nil
}
