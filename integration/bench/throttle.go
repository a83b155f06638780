package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// throttleModes: the throttle kept by `lunferry run`, or by the foreground
// controller of `migrate start --follow` (no run).
var throttleModes = []string{"run", "follow"}

// throttle measures achieved / asked hydration rate over a window, for
// each rate, with and without `run`, the modes interleaved.
func (g *Guest) throttle(ctx context.Context) error {
	state := filepath.Join(g.dir, "state-throttle")
	got := map[string][]float64{}
	whole := map[string]bool{}
	n := 0
	for rep := 0; rep < g.P.ThrottleReps; rep++ {
		for _, rate := range g.P.ThrottleRates {
			for _, mode := range throttleModes {
				n++
				r, err := g.throttleOnce(ctx, state, fmt.Sprintf("t%d", n), rate, mode)
				k := fmt.Sprintf("%d/%s", rate, mode)
				if errors.Is(err, errHydratedInWindow) && g.P.Mode == "smoke" {
					// The smoke LUN is small: a burst the controller
					// ends late (a starved guest) can finish it. The
					// ratio is then a lower bound; the code ran.
					whole[k], err = true, nil
				}
				if err != nil {
					return err
				}
				got[k] = append(got[k], r)
			}
		}
	}
	for _, rate := range g.P.ThrottleRates {
		for _, mode := range throttleModes {
			how := "`lunferry run --interval 1s`"
			if mode == "follow" {
				how = "`migrate start --follow` (no run)"
			}
			k := fmt.Sprintf("%d/%s", rate, mode)
			f := NewFigure(fmt.Sprintf("throttle-%dKiB-%s", rate>>10, mode),
				fmt.Sprintf("throttle %s achieved / asked, %s", fmtRate(rate), mode),
				fmt.Sprintf("hydrated bytes over %s (from the clone's status) under %s", g.P.ThrottleWindow, how),
				"ratio", Between(0.9, 1.1), got[k])
			if whole[k] {
				f.Note = "the LUN hydrated before the window ended: a lower bound"
			}
			g.figure(f)
		}
	}
	return nil
}

func fmtRate(r int64) string {
	if r%(1<<20) == 0 {
		return fmt.Sprintf("%dMiB/s", r>>20)
	}
	return fmt.Sprintf("%dKiB/s", r>>10)
}

// throttleOnce cuts a fresh volume over with the throttle, starts the
// controller, lets hydration settle for a second after its first
// progress, and measures the window.
func (g *Guest) throttleOnce(ctx context.Context, state, name string, rate int64, mode string) (float64, error) {
	sp, err := g.spec(name, g.cfg.Arrays["old"], g.cfg.Arrays["new"], 0, fmtRate(rate))
	if err != nil {
		return 0, err
	}
	if err := g.cutover(ctx, state, sp); err != nil {
		return 0, err
	}
	var stop func()
	if mode == "run" {
		if _, stop, err = g.bgLF(state, "run", "--interval", "1s"); err == nil {
			_, err = g.lf(ctx, state, "migrate", "start", name)
		}
	} else {
		_, stop, err = g.bgLF(state, "migrate", "start", "--follow", "--interval", "1s", name)
	}
	if err != nil {
		if stop != nil {
			stop()
		}
		return 0, err
	}
	ratio, err := measureRate(ctx, name, rate, g.P.ThrottleWindow)
	stop()
	fmt.Fprintf(g.out, "bench: throttle %s %s: achieved/asked %.3f\n", fmtRate(rate), mode, ratio)
	return ratio, errors.Join(err, g.retire(ctx, state, sp, false))
}

// errHydratedInWindow: the volume hydrated before the window ended, so
// the rate measured is a lower bound.
var errHydratedInWindow = errors.New("hydrated before the window ended")

// measureRate waits for the first hydrated region, a second more, then
// returns the bytes hydrated over window divided by rate×window.
func measureRate(ctx context.Context, name string, rate int64, window time.Duration) (float64, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h, _, _, err := cloneProgress(name)
		if err != nil {
			return 0, err
		}
		if h > 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("bench: %s: no hydration within 2 minutes", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	h0, _, region, err := cloneProgress(name)
	t0 := time.Now()
	if err != nil {
		return 0, err
	}
	time.Sleep(window)
	h1, total, _, err := cloneProgress(name)
	dt := time.Since(t0)
	if err != nil {
		return 0, err
	}
	ratio := float64((h1-h0)*region) / dt.Seconds() / float64(rate)
	if h1 == total {
		return ratio, fmt.Errorf("bench: %s: %w: LUN too small for %s over %s", name, errHydratedInWindow, fmtRate(rate), window)
	}
	return ratio, nil
}
