package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

func (a *app) rollbackCommand(names string) *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "after cutover, before handover: copy the host's writes since cutover back to the old LUN and swap live to linear over it (nothing lost; then abort ends on the old array)",
		ArgsUsage: names,
		Description: `The only command that writes the old LUN. Hydration stops; the blocks the host
wrote since cutover (the era layer records them) are copied from the host's view
to the old LUN in rounds, each from a new era, until a round is small (16 MiB, or
less than the one before and under 64 MiB; at most 8 rounds). Then the device
below the era layer is suspended (the host's I/O waits), the rest is copied from
the new LUN, and the device is swapped live to linear over the old LUN: the host
keeps its session and its disk, now served from the old LUN, which holds every
write. 'lunferry migrate abort' (or the admin's hooks) then ends the migration
on the old array with nothing lost. The time the host's I/O was held is printed.

After finalize, which let the old LUN go, the preRollback hooks first map it to
the proxy again (on the old array); it is attached (the WWID and size recorded
at cutover must match), set read-only and fenced again; the last remainder is
copied from the new LUN, which is then the host's view itself.

A rerun resumes an interrupted rollback; restore rebuilds what served the host.
Once the first round began, abort is refused until a rerun finishes (the old LUN
alone holds part of the host's writes over the data as of cutover).
Refused (exit 3) after handover, while finalize is under way, during a cutover
(an online one before its takeover passes the host's writes through to the old
LUN: abort loses nothing), for a volume cut over without an era layer, and,
before finalize, when the clone's region is not a multiple of the era block.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rate", Value: "unlimited", Usage: "cap on the bytes copied per second in the rounds before the final one, e.g. 100MiB/s (unlimited: the volume's throttle now, if it has a rate)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what the rollback would copy (bytes the host wrote since cutover) and change nothing"},
		},
		Action: a.eachVolume(a.rollback),
	}
}

func (a *app) rollback(c *cli.Context, p *plan.Planner, name string) error {
	rate, err := clone.ParseRate(c.String("rate"))
	if err != nil {
		return usageError{err}
	}
	if rate == clone.Paused {
		return usageError{errors.New("--rate 0 would never finish: give a rate, or unlimited")}
	}
	rep, err := p.Rollback(c.Context, name, plan.RollbackOptions{Rate: rate, DryRun: c.Bool("dry-run") || a.g.dryRun})
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, rep)
	}
	fmt.Fprintln(a.stdout, rep.Message)
	return nil
}
