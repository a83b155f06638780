package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/lunferry/lunferry/plan/kernel"
)

func (a *app) doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "preflight: kernel modules, configfs, dm-clone, iscsid, state directory, each volume's array sessions (logged in, runbook timeouts) and export; prints the fix for each gap",
		Action: func(c *cli.Context) error {
			o := kernel.DoctorOptions{SysRoot: a.g.sysRoot, DevRoot: a.g.devRoot, ConfigFSRoot: a.g.configfsRoot,
				StateDir: a.g.stateDir, Iscsiadm: a.g.iscsiadm, Euid: os.Geteuid()}
			if a.doctor != nil {
				a.doctor(&o)
			}
			checks := kernel.Doctor(c.Context, o)
			gaps := 0
			for _, ch := range checks {
				if !ch.OK {
					gaps++
				}
			}
			if a.g.json {
				if err := printJSON(a.stdout, checks); err != nil {
					return err
				}
			} else {
				t := newTable(a.stdout, "CHECK", "STATUS", "DETAIL")
				for _, ch := range checks {
					t.row(ch.Name, map[bool]string{true: "ok", false: "MISSING"}[ch.OK], ch.Detail)
				}
				if err := t.flush(); err != nil {
					return err
				}
				for _, ch := range checks {
					if !ch.OK {
						fmt.Fprintf(a.stdout, "fix %s: %s\n", ch.Name, ch.Fix)
					}
				}
			}
			if gaps > 0 {
				return fmt.Errorf("%d of %d checks failed: %w", gaps, len(checks), errPreflight)
			}
			return nil
		},
	}
}
