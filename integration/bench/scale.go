package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/plan"
)

// scaleThrottle keeps every volume hydrating for the whole measurement.
const scaleThrottle = "64KiB/s"

// scale puts ScaleVolumes volumes (LUN i of one old and one new target)
// on one proxy, cut over and hydrating under `lunferry run`, and measures
// `migrate status`'s time and run's memory and CPU; then takes them and
// their targets away (the groups after it need the guest's RAM).
func (g *Guest) scale(ctx context.Context) (err error) {
	n := g.P.ScaleVolumes
	state := filepath.Join(g.dir, "state-scale")
	oldT := &multiLUN{name: "old", iqn: "iqn.2026-11.io.lunferry.lab:scale-old-" + g.suffix, portal: lab.OldPortal, dir: g.dir, hba: lab.RandomHBAIndex(), size: g.P.ScaleLUNBytes, n: n}
	newT := &multiLUN{name: "new", iqn: "iqn.2026-11.io.lunferry.lab:scale-new-" + g.suffix, portal: lab.NewPortal, dir: g.dir, hba: lab.RandomHBAIndex(), size: g.P.ScaleLUNBytes, n: n}
	var specs []plan.Spec
	defer func() { err = errors.Join(err, g.scaleDown(ctx, state, specs, oldT, newT)) }()
	for _, t := range []*multiLUN{oldT, newT} {
		if err := t.up(); err != nil {
			return err
		}
	}
	oldA := &lab.Array{Portals: []string{oldT.portal}, IQN: oldT.iqn}
	newA := &lab.Array{Portals: []string{newT.portal}, IQN: newT.iqn}
	var names []string
	for i := 0; i < n; i++ {
		sp, err := g.spec(fmt.Sprintf("s%d", i), oldA, newA, i, scaleThrottle)
		if err != nil {
			return err
		}
		specs, names = append(specs, sp), append(names, sp.Name)
	}
	start := time.Now()
	if err := g.cutover(ctx, state, specs...); err != nil {
		return err
	}
	if _, err := g.lf(ctx, state, append([]string{"migrate", "start"}, names...)...); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "bench: scale: %d volumes cut over and started in %.0fs\n", n, time.Since(start).Seconds())
	return g.scaleRun(ctx, state, n)
}

// scaleDown retires the scale group's volumes (the host logs out of each
// export, one abort for all, each removed), then its two targets and its
// state directory. It tries everything and reports every failure.
func (g *Guest) scaleDown(ctx context.Context, state string, specs []plan.Spec, targets ...*multiLUN) error {
	var errs []error
	var names []string
	for _, sp := range specs {
		if err := g.cfg.Host.Logout(g.cfg.ExportPortal, sp.Export.IQN); err != nil {
			errs = append(errs, err)
		}
		names = append(names, sp.Name)
	}
	if _, serr := os.Stat(filepath.Join(state, "volumes")); serr == nil && len(names) > 0 {
		if _, err := g.lf(ctx, state, append([]string{"migrate", "abort"}, names...)...); err != nil {
			errs = append(errs, err)
		}
		for _, n := range names {
			if _, err := g.lf(ctx, state, "volume", "remove", n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, t := range targets {
		if err := t.down(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(state); err != nil {
			errs = append(errs, fmt.Errorf("bench: scale: %w", err))
		}
	}
	return errors.Join(errs...)
}

// scaleRun runs `lunferry run` over the volumes: after its start-up
// restore, CPU over the window, peak RSS, and `migrate status` timed three
// times meanwhile.
func (g *Guest) scaleRun(ctx context.Context, state string, n int) error {
	cmd, stop, err := g.bgLF(state, "run", "--interval", "1s")
	if err != nil {
		return err
	}
	defer stop()
	time.Sleep(5 * time.Second)
	pid := cmd.Process.Pid
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	var status []float64
	for i := 0; i < 3; i++ {
		s := time.Now()
		if _, err := g.lf(ctx, state, "migrate", "status"); err != nil {
			return err
		}
		status = append(status, float64(time.Since(s).Microseconds())/1000)
		time.Sleep(g.P.ScaleWindow / 3)
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	wall := time.Since(t0)
	rss, err := peakRSS(pid)
	if err != nil {
		return err
	}
	g.scaleFigures(n, status, rss, (cpu1-cpu0).Seconds()/wall.Seconds()/float64(n)*100)
	return nil
}

func (g *Guest) scaleFigures(n int, status []float64, rssMiB, cpuPct float64) {
	how := fmt.Sprintf("%d volumes of %d MiB (LUN i of one old and one new target), cut over, hydrating at %s each under `lunferry run --interval 1s`",
		n, g.P.ScaleLUNBytes>>20, scaleThrottle)
	g.figure(NewFigure("scale-status", fmt.Sprintf("`migrate status` time, %d volumes", n), how+"; wall time of the command, three times", "ms", AtMost(200), status))
	g.figure(NewFigure("scale-run-rss", fmt.Sprintf("`run` peak RSS, %d volumes", n), how+"; VmHWM", "MiB", AtMost(64), []float64{rssMiB}))
	g.figure(NewFigure("scale-run-rss-per-volume", "`run` peak RSS per volume", how, "MiB", Reported(), []float64{rssMiB / float64(n)}))
	g.figure(NewFigure("scale-run-cpu-per-volume", "`run` CPU per volume", how+"; user+system time over the window", "% of a core", Reported(), []float64{cpuPct}))
}

// cpuTime reads a process's user+system time from /proc/PID/stat (fields
// 14 and 15, in clock ticks of 1/100 s).
func cpuTime(pid int) (time.Duration, error) {
	f, err := lab.ProcStat(pid)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %q", pid, f)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %q", pid, f)
	}
	return time.Duration(u+k) * 10 * time.Millisecond, nil
}

// peakRSS reads VmHWM (kB) from /proc/PID/status, in MiB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("bench: VmHWM %q: %w", v, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("bench: /proc/%d/status has no VmHWM", pid)
}
