package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// adaptive measures, per repetition of a fresh volume throttled
// "adaptive" (no ceiling, kept by `lunferry run`), the host's fixed-rate
// 4k randread p99 with hydration held and while it yields to the host,
// and the hydration rate it left.
func (g *Guest) adaptive(ctx context.Context) error {
	state := filepath.Join(g.dir, "state-adaptive")
	var idle, yielded, rates []float64
	for i := 0; i < g.P.Reps; i++ {
		a, b, r, err := g.adaptiveOnce(ctx, state, fmt.Sprintf("a%d", i))
		if err != nil {
			return err
		}
		idle, yielded, rates = append(idle, a), append(yielded, b), append(rates, r)
	}
	how := fmt.Sprintf("fio 4k randread at %d IOPS through the export for %s after a %s ramp; throttle \"adaptive\" under `lunferry run --interval 1s`; idle: cut over, hydration not started",
		g.P.LatencyIOPS, g.P.AdaptiveRuntime, g.P.AdaptiveRamp)
	f := RatioFigure("latency-p99-adaptive", "host p99 latency during adaptive hydration / idle", how, AtMost(1.5), yielded, idle)
	g.figure(f)
	g.figure(NewFigure("adaptive-hydration-rate", "hydration rate left by the adaptive throttle",
		"hydrated bytes over the latency job's span, from the clone's status", "MiB/s", Reported(), rates))
	return nil
}

// adaptiveOnce cuts a volume over, measures the host's p99 with
// hydration held, then with hydration under `run` and the adaptive
// throttle, and returns both p99s (ms) and the hydration rate (MiB/s)
// over the second job.
func (g *Guest) adaptiveOnce(ctx context.Context, state, name string) (idleP99, p99, rate float64, err error) {
	sp, err := g.spec(name, g.cfg.Arrays["old"], g.cfg.Arrays["new"], 0, "adaptive")
	if err != nil {
		return 0, 0, 0, err
	}
	if err := g.cutover(ctx, state, sp); err != nil {
		return 0, 0, 0, err
	}
	dev, err := g.hostDisk(sp.Export.IQN)
	if err != nil {
		return 0, 0, 0, err
	}
	job := LatencyJob(g.P.LatencyIOPS)
	r, err := RunFio(ctx, dev, job, g.P.AdaptiveRuntime, 0, "")
	if err != nil {
		return 0, 0, 0, err
	}
	idleP99 = float64(r.P99.Microseconds()) / 1000
	_, stop, err := g.bgLF(state, "run", "--interval", "1s")
	if err != nil {
		return 0, 0, 0, err
	}
	if _, err = g.lf(ctx, state, "migrate", "start", name); err == nil {
		p99, rate, err = g.yieldedJob(ctx, name, dev)
	}
	stop()
	if err != nil {
		return 0, 0, 0, err
	}
	fmt.Fprintf(g.out, "bench: adaptive %s: p99 idle %.2f ms, yielding %.2f ms, hydration %.1f MiB/s\n", name, idleP99, p99, rate)
	return idleP99, p99, rate, g.retire(ctx, state, sp, false)
}

// yieldedJob runs the latency job on dev while volume name hydrates and
// returns its p99 (ms) and the hydration rate over it (MiB/s).
func (g *Guest) yieldedJob(ctx context.Context, name, dev string) (p99, rate float64, err error) {
	h0, _, region, err := cloneProgress(name)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	r, err := RunFio(ctx, dev, LatencyJob(g.P.LatencyIOPS), g.P.AdaptiveRuntime, g.P.AdaptiveRamp, "")
	if err != nil {
		return 0, 0, err
	}
	h1, _, _, err := cloneProgress(name)
	if err != nil {
		return 0, 0, err
	}
	rate = float64((h1-h0)*region) / time.Since(t0).Seconds() / (1 << 20)
	return float64(r.P99.Microseconds()) / 1000, rate, nil
}
