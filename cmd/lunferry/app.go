package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// env is what the app gets from its process: streams, whether stdout is a
// terminal, and how to build the kernel ports (tests pass fakes).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	isTTY          bool
	// ports builds the ports for the global options; nil means the real
	// kernel (or the dry-run printers with --dry-run).
	ports func(g globals) plan.Ports
	// now is the clock (nil: time.Now).
	now func() time.Time
	// doctor adjusts the preflight options (tests fake the kernel).
	doctor func(*kernel.DoctorOptions)
}

// globals are the global flags.
type globals struct {
	stateDir     string
	json         bool
	dryRun       bool
	quiet        bool
	configfsRoot string
	sysRoot      string
	devRoot      string
	iscsiadm     string
	lockWait     time.Duration
	totalRate    clone.Rate
	tick         time.Duration
}

func readGlobals(c *cli.Context) (globals, error) {
	g := globals{
		stateDir: c.String("state-dir"), json: c.Bool("json"), dryRun: c.Bool("dry-run"), quiet: c.Bool("quiet"),
		configfsRoot: c.String("configfs-root"), sysRoot: c.String("sys-root"), devRoot: c.String("dev-root"),
		iscsiadm: c.String("iscsiadm"), lockWait: c.Duration("lock-wait"), tick: time.Second,
	}
	if s := c.String("total-rate"); s != "" {
		r, err := clone.ParseRate(s)
		if err != nil {
			return g, usageError{err}
		}
		if r == clone.Paused {
			return g, usageError{fmt.Errorf("--total-rate %s would hold every volume: give a rate or unlimited, and hold volumes with `lunferry migrate pause`", s)}
		}
		g.totalRate = r
	}
	return g, nil
}

// app is one invocation's context: the env and, once flags are read, the
// planner.
type app struct {
	env
	g globals
	// heartbeat is run's systemd notifier (plan.Options.Heartbeat).
	heartbeat func()
}

func (a *app) planner() (*plan.Planner, error) {
	var ports plan.Ports
	switch {
	case a.env.ports != nil:
		ports = a.env.ports(a.g)
	case a.g.dryRun:
		ports = kernel.DryRunPorts(a.stdout, kernel.Options{SysRoot: a.g.sysRoot, DevRoot: a.g.devRoot, ConfigFSRoot: a.g.configfsRoot})
	default:
		ports = kernel.Ports(kernel.Options{SysRoot: a.g.sysRoot, DevRoot: a.g.devRoot, ConfigFSRoot: a.g.configfsRoot,
			Iscsiadm: a.g.iscsiadm, TotalRate: a.g.totalRate, TickInterval: a.g.tick})
	}
	var log io.Writer = a.stderr
	if a.g.quiet {
		log = io.Discard
	}
	if a.g.dryRun {
		log = a.stdout
	}
	return plan.New(plan.Options{StateDir: a.g.stateDir, Ports: ports, LockWait: a.g.lockWait, DryRun: a.g.dryRun,
		Log: log, Now: a.env.now, Heartbeat: a.heartbeat})
}

// newApp builds the command tree. Actions parse their arguments, call one
// plan function and print.
func newApp(e env) *cli.App {
	a := &app{env: e}
	cliApp := &cli.App{
		Name:                  "lunferry",
		Version:               version,
		Usage:                 "move a live SAN LUN to a new array through a Linux storage proxy (dm-clone + LIO)",
		Description:           workflowHelp,
		Reader:                e.stdin,
		Writer:                e.stdout,
		ErrWriter:             e.stderr,
		EnableBashCompletion:  true,
		Suggest:               true,
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitCodesHelp + "\n",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Value: "/var/lib/lunferry", EnvVars: []string{"LUNFERRY_STATE_DIR"}, Usage: "state directory (volumes, lock, metadata files, hook logs)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts and runbooks"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print every dm table line, configfs change and iscsiadm call a step would make, without making them or saving state"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not log actions to stderr"},
			&cli.StringFlag{Name: "configfs-root", Value: "/sys/kernel/config/target", EnvVars: []string{"LUNFERRY_CONFIGFS_ROOT"}, Usage: "LIO's configfs directory"},
			&cli.StringFlag{Name: "sys-root", Value: "/sys", EnvVars: []string{"LUNFERRY_SYS_ROOT"}, Usage: "sysfs mount point"},
			&cli.StringFlag{Name: "dev-root", Value: "/dev", EnvVars: []string{"LUNFERRY_DEV_ROOT"}, Usage: "device node directory"},
			&cli.StringFlag{Name: "iscsiadm", Value: "iscsiadm", EnvVars: []string{"LUNFERRY_ISCSIADM"}, Usage: "iscsiadm program"},
			&cli.DurationFlag{Name: "lock-wait", Value: 30 * time.Second, Usage: "how long to wait for another lunferry holding the state lock"},
			&cli.StringFlag{Name: "total-rate", EnvVars: []string{"LUNFERRY_TOTAL_RATE"}, Usage: "hydration bandwidth budget shared by all volumes, e.g. 400MiB/s (run, migrate start --follow)"},
		},
		Before: func(c *cli.Context) error {
			g, err := readGlobals(c)
			a.g = g
			return err
		},
		Commands: []*cli.Command{
			a.doctorCommand(),
			a.volumeCommand(),
			a.migrateCommand(),
			a.restoreCommand(),
			a.runCommand(),
			a.completionCommand(),
			a.manCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	usage := func(c *cli.Context, err error, _ bool) error { return usageError{err} }
	cliApp.OnUsageError = usage
	var walk func([]*cli.Command)
	walk = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = usage
			walk(c.Subcommands)
		}
	}
	walk(cliApp.Commands)
	return cliApp
}

// run executes args and returns the exit code, printing the error.
func run(ctx context.Context, e env, args []string) int {
	err := newApp(e).RunContext(ctx, args)
	if err != nil {
		fmt.Fprintf(e.stderr, "lunferry: %v\n", err)
	}
	return exitCode(err)
}

// needArgs checks the number of positional arguments.
func needArgs(c *cli.Context, min int, what string) error {
	if c.NArg() < min {
		return usageError{fmt.Errorf("%s: missing %s (see `lunferry %s --help`)", c.Command.FullName(), what, c.Command.FullName())}
	}
	return nil
}

const workflowHelp = `Workflow, per volume (each step idempotent, persisted, with an abort path):

   lunferry volume add --runbook vols.json          describe the volumes
   lunferry migrate prepare VOL                     before the window: attach the new LUN, check sizes, make metadata
   lunferry migrate cutover VOL                     in the window: hooks, old LUN read-only, clone, export, host login
   lunferry migrate start VOL                       background hydration (kept going by 'lunferry run')
   lunferry run                                     long-running controller: throttle, progress, restore on start
   lunferry migrate finalize VOL                    swap live to linear over the new LUN, detach the old LUN
   lunferry migrate handover VOL                    later: host moves to the new array (hooks), the proxy lets go
   lunferry migrate abort VOL                       before finalize: remove everything, old LUN as it was
   lunferry restore                                 after a proxy reboot: rebuild clone and export from the state

An interrupted step is resumed by running it again, or rolled back by abort.`
