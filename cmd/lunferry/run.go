package main

import (
	"time"

	"github.com/urfave/cli/v2"

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
only for each round, so other commands (pause, throttle, status) work meanwhile.`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "control period"},
			&cli.BoolFlag{Name: "auto-finalize", Usage: "finalize volumes as soon as they are hydrated"},
		},
		Action: func(c *cli.Context) error {
			a.g.tick = c.Duration("interval")
			p, err := a.planner()
			if err != nil {
				return err
			}
			return p.Run(c.Context, c.Duration("interval"), c.Bool("auto-finalize"), func(res []plan.TickResult) {
				if !a.g.quiet {
					a.printTick(res)
				}
			})
		},
	}
}
