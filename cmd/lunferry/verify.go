package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

func (a *app) verifyCommand(names string) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "between cutover and finalize: read the old and the new LUN and compare every hydrated region the host has not written since cutover, and the new LUN with the host's view where it has (exit 9 on a difference); a volume cut over without an era layer needs --host-stopped",
		ArgsUsage: names,
		Flags:     verifyFlags(""),
		Action:    a.eachVolume(a.verify),
	}
}

// verifyFlags are verify's flags, for verify and (with "with --verify: "
// as when) finalize --verify.
func verifyFlags(when string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "rate", Value: "unlimited", Usage: when + "cap on the bytes read per second from each LUN, e.g. 200MiB/s"},
		&cli.BoolFlag{Name: "host-stopped", Usage: when + "state that the host has not written to the volume since cutover (its writes are on the new LUN only and would read as differences)"},
		&cli.BoolFlag{Name: "restart", Usage: when + "compare from the start even where an earlier verify that stopped left a checkpoint to resume"},
	}
}

// verifyRun is a verify's options and its progress line on a terminal.
type verifyRun struct {
	plan.VerifyOptions
	progress *progressLine // nil: no terminal, or --json
}

// done ends the progress line before the report is printed.
func (r verifyRun) done() {
	if r.progress != nil {
		r.progress.end()
	}
}

// verifyOptions reads verify's flags; on a terminal (and without --json)
// the comparison shows a progress line.
func (a *app) verifyOptions(c *cli.Context, name string) (verifyRun, error) {
	rate, err := clone.ParseRate(c.String("rate"))
	if err != nil {
		return verifyRun{}, usageError{err}
	}
	if rate == clone.Paused {
		return verifyRun{}, usageError{errors.New("--rate 0 would never finish: give a rate, or unlimited for no cap")}
	}
	r := verifyRun{VerifyOptions: plan.VerifyOptions{Rate: rate, HostStopped: c.Bool("host-stopped"), Restart: c.Bool("restart")}}
	if !a.g.json && isTerminal(a.stdout) {
		r.progress = newProgressLine(a.stdout, "volume "+name+": verify", time.Now)
		r.OnProgress = r.progress.update
	}
	return r, nil
}

func (a *app) verify(c *cli.Context, p *plan.Planner, name string) error {
	o, err := a.verifyOptions(c, name)
	if err != nil {
		return err
	}
	rep, err := p.Verify(c.Context, name, o.VerifyOptions)
	o.done()
	if rep == nil {
		return err
	}
	if a.g.json {
		return errors.Join(printJSON(a.stdout, rep), err)
	}
	a.printVerify(name, rep, o.HostStopped)
	if err == nil {
		fmt.Fprintf(a.stdout, "volume %s: the new LUN holds what the old one does in every hydrated region\n", name)
	}
	return err
}

// printVerify prints what verify compared and found.
func (a *app) printVerify(name string, rep *plan.VerifyReport, hostStopped bool) {
	r := rep.Result
	if rep.ResumedCheckpoint != nil {
		fmt.Fprintf(a.stdout, "volume %s: resumed the verify that stopped at byte %d (checkpoint of %s); the figures cover both\n",
			name, rep.ResumedFrom, rep.ResumedCheckpoint.Local().Format("2006-01-02 15:04:05"))
	}
	if rep.CheckpointNote != "" {
		fmt.Fprintf(a.stdout, "volume %s: %s\n", name, rep.CheckpointNote)
	}
	fmt.Fprintf(a.stdout, "volume %s: compared %s of %s hydrated (old %s, new %s) in %s, %s per LUN\n",
		name, plan.Bytes(r.Compared), plan.Bytes(r.Total), rep.Old, rep.New, fmtDur(r.Duration), r.Throughput())
	if rep.Thin != nil && rep.Thin.Bytes > 0 {
		fmt.Fprintf(a.stdout, "  of which %s unmapped on the old LUN, skipped at cutover (the new LUN must read zeroes there too)\n", plan.Bytes(rep.Thin.Bytes))
	}
	if !hostStopped {
		fmt.Fprintf(a.stdout, "  %s the host wrote since cutover (%d ranges): not compared with the old LUN; new LUN vs the host's view: compared %s (where hydrated)\n",
			plan.Bytes(rep.HostWrittenBytes), len(rep.HostWritten), plan.Bytes(rep.HostView.Compared))
	}
	for _, m := range rep.WrittenDuring {
		fmt.Fprintf(a.stdout, "  written by the host during verify, not a difference: offset %d length %d\n", m.Offset, m.Length)
	}
	for _, m := range r.Mismatches {
		fmt.Fprintf(a.stdout, "  differs: offset %d length %d\n", m.Offset, m.Length)
	}
	for _, m := range rep.HostView.Mismatches {
		fmt.Fprintf(a.stdout, "  new LUN differs from the host's view: offset %d length %d\n", m.Offset, m.Length)
	}
}
