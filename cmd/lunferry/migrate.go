package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

func (a *app) migrateCommand() *cli.Command {
	names := "VOLUME..."
	return &cli.Command{
		Name:  "migrate",
		Usage: "run the migration steps",
		Subcommands: []*cli.Command{
			{Name: "prepare", Usage: "attach the new LUN, check sizes, create the metadata device (host stays on the old array)", ArgsUsage: names, Action: a.eachVolume(a.prepare)},
			a.cutoverCommand(names),
			{
				Name: "start", Usage: "start background hydration", ArgsUsage: names,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "follow", Usage: "keep the controller going in the foreground until hydrated"},
					&cli.BoolFlag{Name: "finalize", Usage: "with --follow: finalize once hydrated"},
					&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "with --follow: control period"},
				},
				Action: a.start,
			},
			{Name: "throttle", Usage: "set a volume's hydration throttle, e.g. '50MiB/s' or 'mon-fri 08:00-18:00=0; *=unlimited' (0 holds hydration, unlimited lifts the throttle)", ArgsUsage: "VOLUME SCHEDULE", Action: a.throttle},
			{Name: "pause", Usage: "pause background hydration", ArgsUsage: names, Action: a.eachVolume(a.pause)},
			{Name: "resume", Usage: "resume background hydration", ArgsUsage: names, Action: a.eachVolume(a.resume)},
			{
				Name: "status", Usage: "step, progress, rate, ETA, throttle and host sessions of every volume", ArgsUsage: "[VOLUME...]",
				Description: `Each call reads the kernel afresh. Given volumes, it reads only their state:
its warnings of stray objects (named lunferry-..., unknown to the state) cover
those volumes' objects and objects named after no volume; a status of all
volumes covers every object.`,
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "watch", Usage: "refresh every interval until interrupted"},
					&cli.BoolFlag{Name: "check", Usage: "exit 3 when the kernel differs from the state or a volume is faulty, 4 when hydration stalled (for monitoring)"},
				},
				Action: a.status,
			},
			a.verifyCommand(names),
			a.rollbackCommand(names),
			{
				Name: "finalize", Usage: "swap live to linear over the new LUN, detach the old LUN, free the metadata (after hydration)", ArgsUsage: names,
				Flags: append([]cli.Flag{&cli.BoolFlag{Name: "verify", Usage: "first run verify; finalize only if the copy verifies clean (exit 9 on a difference, nothing changed)"}},
					verifyFlags("with --verify: ")...),
				Action: a.eachVolume(a.finalize),
			},
			{
				Name: "handover", Usage: "after finalize: pre-handover hooks move the host to the new array, then the proxy's export, device and session to the new LUN are removed", ArgsUsage: names,
				Description: `The optional last step. The pre-handover hooks move the host: on the new array,
map the new LUN to the host's IQN; on the host, log out of the proxy's export and
log in to the new array. While the host still has a session on the export,
handover stops with exit code 4 (not ready) and changes nothing of the proxy;
the next attempt runs the pre-handover hooks again. Then the export, the linear
device and the proxy's session to the new LUN are removed and the post-handover
hooks run. A handed-over volume is final: 'lunferry volume remove' forgets it.`,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Usage: "tear the export down even while the host still has a session on it (its I/O to the proxy fails)"},
				},
				Action: a.eachVolume(a.handover),
			},
			{
				Name: "abort", Usage: "before finalize or after a rollback: remove export, device and attachments; the old LUN stays as it was (after a rollback: holds every write)", ArgsUsage: names,
				Description: `Runs the pre-abort hooks (they move the host back to the old array), then
removes everything lunferry built, newest first, and runs the post-abort hooks.
After cutover the host's writes since then are on the new LUN only, unless the
volume was rolled back ('lunferry migrate rollback'): then the old LUN holds
every write and nothing is lost.
An abort interrupted before it removed anything is pending: restore and run
rebuild what serves the host, and only this command finishes it; --cancel
takes it back to the step it came from.`,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "cancel", Usage: "take back an abort interrupted before it removed anything (hooks that ran are not undone)"},
				},
				Action: a.eachVolume(a.abort),
			},
		},
	}
}

// eachVolume runs fn for each named volume in order, stopping at the first
// error.
func (a *app) eachVolume(fn func(c *cli.Context, p *plan.Planner, name string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := needArgs(c, 1, "VOLUME"); err != nil {
			return err
		}
		p, err := a.planner()
		if err != nil {
			return err
		}
		for _, name := range c.Args().Slice() {
			if err := fn(c, p, name); err != nil {
				return err
			}
		}
		return nil
	}
}

func (a *app) prepare(c *cli.Context, p *plan.Planner, name string) error {
	v, err := p.Prepare(c.Context, name)
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, v)
	}
	size := "unknown"
	if v.SizeSectors > 0 {
		size = plan.Bytes(v.SizeSectors * 512).String()
	}
	fmt.Fprintf(a.stdout, "volume %s prepared: size %s, new LUN %s, metadata %s\n", name, size, diskLabel(v.NewDisk), v.MetadataFile)
	return nil
}

func diskLabel(d *plan.Disk) string {
	if d == nil {
		return "-"
	}
	if d.SizeBytes == 0 {
		return d.Path
	}
	return fmt.Sprintf("%s (%s)", d.Path, plan.Bytes(d.SizeBytes))
}

func (a *app) cutoverCommand(names string) *cli.Command {
	return &cli.Command{
		Name: "cutover", Usage: "in the window: hooks, old LUN read-only, clone, export to the host, wait for its session (--online: no window, for multipath hosts)", ArgsUsage: names,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "online", Usage: "online cutover: the host's multipath map gains the proxy's paths and loses its direct ones, then the proxy takes over live (hooks addPaths, removeDirectPaths, restoreDirectPaths)"},
			&cli.BoolFlag{Name: "no-fence", Usage: "take no persistent reservation on the old LUN (for an array that refuses them)"},
		},
		Action: a.eachVolume(a.cutover),
	}
}

func (a *app) cutover(c *cli.Context, p *plan.Planner, name string) error {
	v, err := p.CutoverWith(c.Context, name, plan.CutoverOptions{Online: c.Bool("online"), NoFence: c.Bool("no-fence")})
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, v)
	}
	if m := v.Cutover; m != nil && m.Online && v.Step == plan.StepCutOver {
		fmt.Fprintf(a.stdout, "volume %s cut over online: the host was never stopped; the takeover held its I/O for %s\n", name, fmtDur(m.TakeoverHeld.D()))
	} else if v.Window != nil {
		w := v.Window
		fmt.Fprintf(a.stdout, "volume %s cut over: the host is served by the proxy\n  time the tool spent in the window: %s (hooks %s, waiting for the host's session %s, total %s)\n",
			name, fmtDur(w.Tool.D()), fmtDur(w.Hooks.D()), fmtDur(w.SessionWait.D()), fmtDur(w.Total.D()))
	} else {
		fmt.Fprintf(a.stdout, "volume %s is %s\n", name, v.Step)
	}
	return nil
}

func (a *app) start(c *cli.Context) error {
	if err := needArgs(c, 1, "VOLUME"); err != nil {
		return err
	}
	p, err := a.planner()
	if err != nil {
		return err
	}
	for _, name := range c.Args().Slice() {
		v, err := p.Start(c.Context, name)
		if err != nil {
			return err
		}
		switch {
		case a.g.json:
		case v.Paused:
			fmt.Fprintf(a.stdout, "volume %s: hydration paused (throttle %s): `lunferry migrate resume %s` resumes it\n", name, v.Spec.Throttle, name)
		case v.Spec.Throttle.RateAt(time.Now()) == clone.Unlimited:
			fmt.Fprintf(a.stdout, "volume %s: hydration started (throttle %s); `lunferry run` applies any later limit\n", name, v.Spec.Throttle)
		default:
			fmt.Fprintf(a.stdout, "volume %s: hydration runs under `lunferry run`, which keeps the throttle %s: start it (or its systemd unit) if it is not running\n", name, v.Spec.Throttle)
		}
	}
	if !c.Bool("follow") {
		return nil
	}
	want := c.Args().Slice()
	return a.follow(c.Context, p, want, c.Duration("interval"), c.Bool("finalize"))
}

// follow runs the control loop until every wanted volume is hydrated (or
// finalized with fin).
func (a *app) follow(ctx context.Context, p *plan.Planner, want []string, interval time.Duration, fin bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loopErr error
	err := p.Run(ctx, interval, fin, func(res []plan.TickResult) {
		a.printTick(res)
		rep, err := p.Status(ctx, want...)
		if err != nil {
			loopErr = err
			cancel()
			return
		}
		done := true
		for _, s := range rep.Volumes {
			target := plan.StepHydrated
			if fin {
				target = plan.StepFinalized
			}
			if s.Step == plan.StepFaulty {
				loopErr = fmt.Errorf("volume %s is faulty: %s: %w", s.Name, s.LastError, plan.ErrFaulty)
				cancel()
				return
			}
			if s.Step != target {
				done = false
			}
		}
		if done {
			cancel()
		}
	})
	if loopErr != nil {
		return loopErr
	}
	return err
}

func (a *app) printTick(res []plan.TickResult) {
	if a.g.json {
		printJSON(a.stdout, res)
		return
	}
	for _, r := range res {
		line := fmt.Sprintf("%s %-10s %s %5.1f%% %s ETA %s", time.Now().Format("15:04:05"), r.Volume, bar(r.Progress.Fraction(), 20),
			100*r.Progress.Fraction(), fmtRate(r.Progress.Rate), fmtDur(r.Progress.ETA.D()))
		switch {
		case r.Error != "":
			line += " error: " + r.Error
		case r.Finalized:
			line += " finalized"
		case r.Step == plan.StepHydrated:
			line += " hydrated"
		}
		fmt.Fprintln(a.stdout, line)
	}
}

func (a *app) throttle(c *cli.Context) error {
	if err := needArgs(c, 2, "VOLUME and SCHEDULE"); err != nil {
		return err
	}
	sch, err := clone.ParseSchedule(strings.Join(c.Args().Tail(), " "))
	if err != nil {
		return usageError{err}
	}
	p, err := a.planner()
	if err != nil {
		return err
	}
	name := c.Args().First()
	if err := p.SetThrottle(c.Context, name, sch); err != nil {
		return err
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "volume %s: throttle %s (applied by `lunferry run` at its next tick)\n", name, sch)
	}
	return nil
}

func (a *app) pause(c *cli.Context, p *plan.Planner, name string) error {
	if err := p.Pause(c.Context, name); err != nil {
		return err
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "volume %s: hydration paused\n", name)
	}
	return nil
}

func (a *app) resume(c *cli.Context, p *plan.Planner, name string) error {
	if err := p.Resume(c.Context, name); err != nil {
		return err
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "volume %s: hydration resumed\n", name)
	}
	return nil
}

func (a *app) finalize(c *cli.Context, p *plan.Planner, name string) error {
	v, err := a.finalizeMaybeVerified(c, p, name)
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, v)
	}
	fmt.Fprintf(a.stdout, "volume %s finalized: %s now runs linear over the new LUN (host I/O held %s during the swap); the old LUN is detached and its metadata freed\n",
		name, plan.DMName(name), fmtDur(v.SwapHeld.D()))
	return nil
}

// finalizeMaybeVerified finalizes, after verify with --verify. Verify's
// report is printed; with --json only when finalize did not happen (a
// difference: runbooks get the ranges), the finalized volume otherwise.
func (a *app) finalizeMaybeVerified(c *cli.Context, p *plan.Planner, name string) (*plan.Volume, error) {
	if !c.Bool("verify") {
		return p.Finalize(c.Context, name)
	}
	o, err := a.verifyOptions(c, name)
	if err != nil {
		return nil, err
	}
	v, rep, err := p.FinalizeVerified(c.Context, name, o.VerifyOptions)
	o.done()
	switch {
	case rep == nil:
	case !a.g.json:
		a.printVerify(name, rep, o.HostStopped)
	case err != nil:
		return nil, errors.Join(printJSON(a.stdout, rep), err)
	}
	return v, err
}

func (a *app) handover(c *cli.Context, p *plan.Planner, name string) error {
	v, err := p.Handover(c.Context, name, plan.HandoverOptions{Force: c.Bool("force")})
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, v)
	}
	if a.g.dryRun {
		fmt.Fprintf(a.stdout, "dry run: volume %s would be handed over; nothing was changed\n", name)
		return nil
	}
	fmt.Fprintf(a.stdout, "volume %s handed over: the host uses %s lun %d on the new array directly; the proxy's export %s, device %s and session to the new LUN are gone; `lunferry volume remove %s` forgets the volume\n",
		name, v.Spec.New.IQN, v.Spec.New.LUN, v.Spec.Export.IQN, plan.DMName(name), name)
	return nil
}

func (a *app) abort(c *cli.Context, p *plan.Planner, name string) error {
	if c.Bool("cancel") {
		v, err := p.CancelAbort(c.Context, name)
		if err != nil {
			return err
		}
		if a.g.json {
			return printJSON(a.stdout, v)
		}
		fmt.Fprintf(a.stdout, "volume %s: abort cancelled; back to %s\n", name, v.Step)
		return nil
	}
	rep, err := p.Abort(c.Context, name)
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, rep)
	}
	fmt.Fprintln(a.stdout, rep.Message)
	return nil
}

func (a *app) status(c *cli.Context) error {
	p, err := a.planner()
	if err != nil {
		return err
	}
	watch := c.Duration("watch")
	for {
		rep, err := p.Status(c.Context, c.Args().Slice()...)
		if err != nil {
			return err
		}
		if a.g.json {
			if err := printJSON(a.stdout, rep); err != nil {
				return err
			}
		} else {
			if watch > 0 && a.isTTY {
				fmt.Fprint(a.stdout, "\033[H\033[2J")
			}
			if err := a.printStatus(rep); err != nil {
				return err
			}
		}
		if watch <= 0 {
			if c.Bool("check") {
				return rep.Check()
			}
			return nil
		}
		select {
		case <-c.Context.Done():
			if errors.Is(c.Context.Err(), context.Canceled) {
				return nil
			}
			return c.Context.Err()
		case <-time.After(watch):
		}
	}
}

func (a *app) printStatus(rep *plan.StatusReport) error {
	if len(rep.Volumes) == 0 {
		fmt.Fprintln(a.stdout, "no volumes; add one with `lunferry volume add`")
	} else {
		t := newTable(a.stdout, "VOLUME", "STEP", "PROGRESS", "RATE", "ETA", "THROTTLE", "SESSIONS", "WINDOW", "SERVING")
		for _, s := range rep.Volumes {
			prog := fmt.Sprintf("%5.1f%%", s.Percent)
			if a.isTTY {
				prog = bar(s.Percent/100, 20) + " " + prog
			}
			step := string(s.Step)
			if s.Paused {
				step += " (paused)"
			}
			if s.LastError != "" {
				step += " (interrupted)"
			}
			sess := strings.Join(s.Sessions, ",")
			if sess == "" {
				sess = "-"
			}
			win := "-"
			if s.Window != nil {
				win = fmtDur(s.Window.Tool.D())
			}
			throttle := s.Throttle
			if throttle != s.RateNow {
				throttle += " (now " + s.RateNow + ")"
			}
			serving := s.Serving
			if serving == "" {
				serving = "-"
			}
			t.row(s.Name, step, prog, fmtRate(s.Progress.Rate), fmtDur(s.Progress.ETA.D()), throttle, sess, win, serving)
		}
		if err := t.flush(); err != nil {
			return err
		}
		for _, s := range rep.Volumes {
			a.printNotes(s)
		}
	}
	for _, s := range rep.Strays {
		fmt.Fprintf(a.stdout, "warning: %s carries lunferry's name but no volume's state knows it; lunferry leaves it alone\n", s)
	}
	return nil
}

// printNotes prints what an admin must know of one volume below the table.
func (a *app) printNotes(s plan.VolumeStatus) {
	if s.LastError != "" {
		fmt.Fprintf(a.stdout, "%s: %s\n", s.Name, s.LastError)
	}
	for _, d := range s.Drift {
		fmt.Fprintf(a.stdout, "%s: kernel differs from the state: %s (`lunferry run` or `lunferry restore` rebuilds what serves the host)\n", s.Name, d)
	}
	if !s.StalledSince.IsZero() {
		fmt.Fprintf(a.stdout, "%s: hydration stalled since %s: the old LUN may return read errors or an array is unreachable (see the kernel log)\n",
			s.Name, s.StalledSince.Local().Format("2006-01-02 15:04:05"))
		if s.Unreadable != nil {
			fmt.Fprintf(a.stdout, "%s: %s\n", s.Name, s.Unreadable.Summary())
		}
	}
	for _, u := range s.Unreachable {
		since := "now (no `lunferry run` has seen it yet)"
		if !u.Since.IsZero() {
			since = "since " + u.Since.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(a.stdout, "%s: %s array unreachable %s: session to %s %s; I/O to it waits up to %s (its replacement timeout), then fails\n",
			s.Name, u.Array, since, u.Target, u.State, u.Replacement.D())
	}
	for _, d := range s.SessionTimeouts {
		fmt.Fprintf(a.stdout, "%s: session timeouts differ from the runbook: %s (they apply at the session's next login)\n", s.Name, d)
	}
	if s.LiveError != "" {
		fmt.Fprintf(a.stdout, "%s: kernel not readable: %s (after a reboot run `lunferry restore`)\n", s.Name, s.LiveError)
	}
	if s.OnlinePhase != "" && s.Step == plan.StepCuttingOver {
		fmt.Fprintf(a.stdout, "%s: online cutover at phase %s\n", s.Name, s.OnlinePhase)
	}
	if s.Thin != nil && !s.Step.Finalized() {
		fmt.Fprintf(a.stdout, "%s: thin old LUN: %s\n", s.Name, s.Thin.Summary())
	}
	if r := s.Rollback; r != nil && (s.Step == plan.StepRollingBack || s.Step == plan.StepRolledBack) {
		fmt.Fprintf(a.stdout, "%s: rollback from %s: %d rounds, %s copied to the old LUN", s.Name, r.From, r.Round, plan.Bytes(r.Copied))
		if r.Swapped {
			fmt.Fprintf(a.stdout, ", host I/O held %s in the final round", fmtDur(r.Held.D()))
		}
		fmt.Fprintln(a.stdout)
	}
	switch s.Step {
	case plan.StepFinalized:
		fmt.Fprintf(a.stdout, "%s: the host still goes through the proxy; `%s` moves it to the new array and retires the proxy\n", s.Name, s.Next)
	case plan.StepAborting:
		if s.AbortPending {
			fmt.Fprintf(a.stdout, "%s: an abort is pending; the proxy still serves the host: `%s` finishes it, `lunferry migrate abort --cancel %s` takes it back\n", s.Name, s.Next, s.Name)
		}
	case plan.StepRolledBack:
		fmt.Fprintf(a.stdout, "%s: rolled back: the proxy serves the host from the old LUN, which holds every write; `%s` ends the migration on the old array\n", s.Name, s.Next)
	case plan.StepHandedOver:
		fmt.Fprintf(a.stdout, "%s: handed over %s: the host uses the new array directly; `%s` forgets it\n", s.Name,
			s.HandedOverAt.Local().Format("2006-01-02 15:04"), s.Next)
	}
}
