package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

func (a *app) volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "describe the volumes to migrate",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add volumes from flags or a runbook file",
				ArgsUsage: " ",
				Description: `Either --runbook FILE (JSON: {"volumes": [ ... ]}, see plan.Spec) or the flags for one volume.
Example:
   lunferry volume add --name db1 \
     --old-portal 10.0.0.10:3260 --old-iqn iqn.2001-05.com.old:array --old-lun 3 \
     --new-portal 10.0.1.20:3260 --new-iqn iqn.2010-01.com.new:array --new-lun 7 \
     --host-iqn iqn.1994-05.com.redhat:db1 \
     --export-iqn iqn.2026-11.com.example.proxy:db1 --export-portal 10.0.2.5:3260 \
     --throttle 'mon-fri 08:00-18:00=50MiB/s; *=200MiB/s' \
     --pre-cutover-hook /etc/lunferry/hooks/quiesce --post-cutover-hook /etc/lunferry/hooks/host-login`,
				Flags:  specFlags(),
				Action: a.volumeAdd,
			},
			{
				Name:   "list",
				Usage:  "list volumes and their steps",
				Action: a.volumeList,
			},
			{
				Name:      "show",
				Usage:     "show one volume's full record",
				ArgsUsage: "VOLUME",
				Action:    a.volumeShow,
			},
			{
				Name:      "remove",
				Usage:     "forget a volume (new, aborted or handed over; finalized with --forget)",
				ArgsUsage: "VOLUME",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "forget", Usage: "drop a finalized volume's record, leaving its device and export serving the host"},
				},
				Action: a.volumeRemove,
			},
		},
	}
}

func specFlags() []cli.Flag {
	f := []cli.Flag{
		&cli.StringFlag{Name: "runbook", Usage: "JSON runbook file with several volumes"},
		&cli.StringFlag{Name: "name", Usage: "volume name (a-z, 0-9, -)"},
	}
	for _, side := range []string{"old", "new"} {
		f = append(f,
			&cli.StringFlag{Name: side + "-portal", Usage: side + " array portal ip:port"},
			&cli.StringFlag{Name: side + "-iqn", Usage: side + " array target IQN"},
			&cli.IntFlag{Name: side + "-lun", Usage: side + " LUN number"},
			&cli.StringFlag{Name: side + "-size", Usage: side + " LUN size (e.g. 100GiB), optional"},
			&cli.StringFlag{Name: side + "-chap-user", Usage: side + " array CHAP user name"},
			&cli.StringFlag{Name: side + "-chap-secret-file", Usage: side + " array CHAP secret file (mode 0600)"},
		)
	}
	return append(f,
		&cli.StringFlag{Name: "host-iqn", Usage: "application host's initiator IQN (the only one admitted)"},
		&cli.StringFlag{Name: "export-iqn", Usage: "target IQN the proxy exports the volume as"},
		&cli.StringSliceFlag{Name: "export-portal", Usage: "ip:port the export listens on (repeatable)"},
		&cli.Uint64Flag{Name: "region-sectors", Usage: "dm-clone region size in 512-byte sectors (default 128)"},
		&cli.StringFlag{Name: "metadata-device", Usage: "block device for dm-clone metadata (default: loop file under the state dir)"},
		&cli.StringFlag{Name: "throttle", Usage: "hydration throttle schedule, e.g. '50MiB/s' or 'mon-fri 08:00-18:00=50MiB/s; *=200MiB/s' (0 holds hydration, unlimited lifts the throttle)"},
		&cli.StringSliceFlag{Name: "pre-cutover-hook", Usage: "executable run before cutover (repeatable)"},
		&cli.StringSliceFlag{Name: "post-cutover-hook", Usage: "executable run after the export exists (repeatable)"},
		&cli.StringSliceFlag{Name: "pre-finalize-hook", Usage: "executable run before finalize (repeatable)"},
		&cli.StringSliceFlag{Name: "post-finalize-hook", Usage: "executable run after finalize (repeatable)"},
		&cli.StringSliceFlag{Name: "pre-abort-hook", Usage: "executable run before abort removes the export: stop the host and log it out (repeatable)"},
		&cli.StringSliceFlag{Name: "post-abort-hook", Usage: "executable run after abort (repeatable)"},
		&cli.StringSliceFlag{Name: "pre-handover-hook", Usage: "executable run at handover, after finalize: map the new LUN to the host, move the host from the proxy to the new array (repeatable)"},
		&cli.StringSliceFlag{Name: "post-handover-hook", Usage: "executable run once handover removed the proxy's export, device and session (repeatable)"},
		&cli.StringSliceFlag{Name: "pre-rollback-hook", Usage: "executable run before a rollback after finalize attaches the old LUN again: map it to the proxy on the old array (repeatable)"},
		&cli.DurationFlag{Name: "hook-timeout", Usage: "timeout of each hook (default 5m)"},
		&cli.DurationFlag{Name: "session-timeout", Usage: "how long cutover waits for the host to log in (default 2m)"},
	)
}

// specFromFlags builds one spec from the flags.
func specFromFlags(c *cli.Context) (plan.Spec, error) {
	s := plan.Spec{
		Name:          c.String("name"),
		HostIQN:       c.String("host-iqn"),
		Export:        plan.Export{IQN: c.String("export-iqn"), Portals: c.StringSlice("export-portal")},
		RegionSectors: c.Uint64("region-sectors"),
		Metadata:      plan.Metadata{Device: c.String("metadata-device")},
		Hooks: plan.Hooks{
			PreCutover: c.StringSlice("pre-cutover-hook"), PostCutover: c.StringSlice("post-cutover-hook"),
			PreFinalize: c.StringSlice("pre-finalize-hook"), PostFinalize: c.StringSlice("post-finalize-hook"),
			PreAbort: c.StringSlice("pre-abort-hook"), PostAbort: c.StringSlice("post-abort-hook"),
			PreHandover: c.StringSlice("pre-handover-hook"), PostHandover: c.StringSlice("post-handover-hook"),
			PreRollback: c.StringSlice("pre-rollback-hook"),
			Timeout:     plan.Duration(c.Duration("hook-timeout")),
		},
		SessionTimeout: plan.Duration(c.Duration("session-timeout")),
	}
	for _, side := range []string{"old", "new"} {
		l := plan.LUN{Portal: c.String(side + "-portal"), IQN: c.String(side + "-iqn"), LUN: c.Int(side + "-lun")}
		if v := c.String(side + "-size"); v != "" {
			b, err := plan.ParseBytes(v)
			if err != nil {
				return s, usageError{fmt.Errorf("--%s-size: %w", side, err)}
			}
			l.SizeBytes = b
		}
		if u := c.String(side + "-chap-user"); u != "" || c.String(side+"-chap-secret-file") != "" {
			l.CHAP = &plan.CHAP{Username: u, SecretFile: c.String(side + "-chap-secret-file")}
		}
		if side == "old" {
			s.Old = l
		} else {
			s.New = l
		}
	}
	if t := c.String("throttle"); t != "" {
		sch, err := clone.ParseSchedule(t)
		if err != nil {
			return s, usageError{fmt.Errorf("--throttle: %w", err)}
		}
		s.Throttle = sch
	}
	return s, nil
}

func (a *app) volumeAdd(c *cli.Context) error {
	var specs []plan.Spec
	if rb := c.String("runbook"); rb != "" {
		if c.IsSet("name") {
			return usageError{fmt.Errorf("volume add: give --runbook or the flags of one volume, not both")}
		}
		book, err := plan.ReadRunbook(rb)
		if err != nil {
			return err
		}
		specs = book.Volumes
	} else {
		if !c.IsSet("name") {
			return usageError{fmt.Errorf("volume add: give --runbook FILE or --name and the volume's flags (see --help)")}
		}
		s, err := specFromFlags(c)
		if err != nil {
			return err
		}
		specs = []plan.Spec{s}
	}
	p, err := a.planner()
	if err != nil {
		return err
	}
	vols, err := p.Add(c.Context, specs...)
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, vols)
	}
	for _, v := range vols {
		fmt.Fprintf(a.stdout, "added volume %s (%s lun %d -> %s lun %d, export %s for %s)\n", v.Spec.Name,
			v.Spec.Old.IQN, v.Spec.Old.LUN, v.Spec.New.IQN, v.Spec.New.LUN, v.Spec.Export.IQN, v.Spec.HostIQN)
	}
	return nil
}

func (a *app) volumeList(c *cli.Context) error {
	p, err := a.planner()
	if err != nil {
		return err
	}
	vols, err := p.List(c.Context)
	if err != nil {
		return err
	}
	if a.g.json {
		if vols == nil {
			vols = []*plan.Volume{}
		}
		return printJSON(a.stdout, vols)
	}
	if len(vols) == 0 {
		fmt.Fprintln(a.stdout, "no volumes; add one with `lunferry volume add`")
		return nil
	}
	t := newTable(a.stdout, "VOLUME", "STEP", "OLD", "NEW", "EXPORT", "HOST")
	for _, v := range vols {
		t.row(v.Spec.Name, stepLabel(v), lunLabel(v.Spec.Old), lunLabel(v.Spec.New), v.Spec.Export.IQN, v.Spec.HostIQN)
	}
	return t.flush()
}

func lunLabel(l plan.LUN) string { return fmt.Sprintf("%s %s/%d", l.Portal, l.IQN, l.LUN) }

func stepLabel(v *plan.Volume) string {
	s := string(v.Step)
	if v.Paused {
		s += " (paused)"
	}
	if v.LastError != "" {
		s += " (interrupted)"
	}
	return s
}

func (a *app) volumeShow(c *cli.Context) error {
	if err := needArgs(c, 1, "VOLUME"); err != nil {
		return err
	}
	p, err := a.planner()
	if err != nil {
		return err
	}
	v, err := p.Show(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if a.g.json {
		return printJSON(a.stdout, v)
	}
	w := a.stdout
	fmt.Fprintf(w, "volume:    %s\nstep:      %s\n", v.Spec.Name, stepLabel(v))
	if v.LastError != "" {
		fmt.Fprintf(w, "error:     %s\n", v.LastError)
	}
	fmt.Fprintf(w, "old:       %s\nnew:       %s\nhost:      %s\nexport:    %s on %s\n", lunLabel(v.Spec.Old), lunLabel(v.Spec.New),
		v.Spec.HostIQN, v.Spec.Export.IQN, strings.Join(v.Spec.Export.Portals, " "))
	fmt.Fprintf(w, "region:    %d sectors\nthrottle:  %s\n", v.Spec.RegionSectors, v.Spec.Throttle)
	if v.SizeSectors > 0 {
		fmt.Fprintf(w, "size:      %s (%d sectors)\n", plan.Bytes(v.SizeSectors*512), v.SizeSectors)
	}
	if h := v.HostIdentity; h != nil {
		whose := "the old LUN's"
		if !h.Verdict.Exact {
			whose = "a new one (the old LUN's " + h.Verdict.OldWWID + " cannot be shown: " + h.Verdict.Reason + ")"
		}
		fmt.Fprintf(w, "identity:  the host sees %s, %s\n", h.Verdict.NewWWID, whose)
		for _, n := range h.Verdict.Notes {
			fmt.Fprintf(w, "note:      %s\n", n)
		}
	}
	for _, o := range v.Objects {
		pend := ""
		if o.Pending {
			pend = " (being created when interrupted)"
		}
		fmt.Fprintf(w, "object:    %-10s %s %s%s\n", o.Kind, o.Name, o.Device, pend)
	}
	if !v.HandedOverAt.IsZero() {
		fmt.Fprintf(w, "handover:  %s: the host uses the new LUN directly; the proxy holds nothing of the volume\n", v.HandedOverAt.Local().Format("2006-01-02 15:04:05"))
	} else if !v.HostMovedAt.IsZero() {
		fmt.Fprintf(w, "handover:  the host left the proxy at %s; rerun `lunferry migrate handover %s` to finish\n", v.HostMovedAt.Local().Format("2006-01-02 15:04:05"), v.Spec.Name)
	}
	if v.Window != nil {
		fmt.Fprintf(w, "window:    tool %s, hooks %s, session wait %s, total %s\n", fmtDur(v.Window.Tool.D()), fmtDur(v.Window.Hooks.D()),
			fmtDur(v.Window.SessionWait.D()), fmtDur(v.Window.Total.D()))
	}
	return nil
}

func (a *app) volumeRemove(c *cli.Context) error {
	if err := needArgs(c, 1, "VOLUME"); err != nil {
		return err
	}
	p, err := a.planner()
	if err != nil {
		return err
	}
	name := c.Args().First()
	if err := p.Remove(c.Context, name, c.Bool("forget")); err != nil {
		return err
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "volume %s removed\n", name)
	}
	return nil
}
