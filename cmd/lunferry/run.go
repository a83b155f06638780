package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lunferry/lunferry/internal/metrics"
	"github.com/lunferry/lunferry/plan"
)

func (a *app) runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "long-running controller: restore on start, then keep every hydrating volume at its throttle (systemd service)",
		Description: `Runs until interrupted. On start it restores the kernel objects of every volume
(after a reboot), then polls each hydrating volume, records progress, rate and ETA,
steers dm-clone toward the volume's throttle and the --total-rate budget, and marks
volumes hydrated. With --auto-finalize it also finalizes them. It takes the state lock
only for each round, so other commands (pause, throttle, status) work meanwhile.

Between rounds it wakes as often as the throttle needs (every 10-100 ms for a volume
on an array much faster than its throttle) to end short bursts of hydration: a light
step that reads the clone status and sends dm-clone messages, saving nothing. While
another command holds the lock, such a step only disables hydration until the lock
is free. The throttle thus holds over a few seconds whatever --interval is;
--interval sets how often progress, rate and ETA are saved and printed.

As a systemd service: the Debian package installs lunferry.service (Type=notify:
ready once the initial restore has finished, a watchdog ping every round), which
reads its options from /etc/lunferry/lunferry.env:

   systemctl enable --now lunferry`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "control period: progress saved and printed, settings re-checked (throttled bursts are ended in between as needed)"},
			&cli.BoolFlag{Name: "auto-finalize", Usage: "finalize volumes as soon as they are hydrated"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"LUNFERRY_METRICS_LISTEN"}, Usage: "serve Prometheus metrics on `ADDR`/metrics, e.g. 127.0.0.1:9797 (off when empty)"},
		},
		Action: func(c *cli.Context) error {
			a.g.tick = c.Duration("interval")
			if addr := c.String("metrics-listen"); addr != "" {
				s, err := a.serveMetrics(addr)
				if err != nil {
					return err
				}
				defer s.Close()
			}
			a.heartbeat = (&sdNotifier{log: a.stderr}).beat
			p, err := a.planner()
			if err != nil {
				return err
			}
			last := map[string]shown{}
			return p.Run(c.Context, c.Duration("interval"), c.Bool("auto-finalize"), func(res []plan.TickResult) {
				if a.g.quiet {
					return
				}
				// A line per volume when something changed: step, error,
				// a percent of progress, or 30 s of silence.
				var out []plan.TickResult
				now := time.Now()
				for _, r := range res {
					pct := int(100 * r.Progress.Fraction())
					l, ok := last[r.Volume]
					if !ok || l.step != r.Step || l.pct != pct || r.Error != "" || now.Sub(l.at) >= 30*time.Second {
						out = append(out, r)
						last[r.Volume] = shown{step: r.Step, pct: pct, at: now}
					}
				}
				if len(out) > 0 {
					a.printTick(out)
				}
			})
		},
	}
}

// shown is what `run` last printed for a volume.
type shown struct {
	step plan.Step
	pct  int
	at   time.Time
}

// serveMetrics serves Prometheus metrics on addr. A scrape reads what
// `migrate status` shows, through a planner of its own (its own kernel
// handles, as another lunferry process would have), and takes no lock, so
// it never waits for a step.
func (a *app) serveMetrics(addr string) (*metrics.Server, error) {
	p, err := a.planner()
	if err != nil {
		return nil, err
	}
	src := func(ctx context.Context) (*plan.StatusReport, error) { return p.Status(ctx) }
	s, err := metrics.Listen(addr, metrics.New(metrics.Options{Source: src, Budget: a.g.totalRate}))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.stderr, "lunferry: metrics on http://%s/metrics\n", s.Addr())
	return s, nil
}
