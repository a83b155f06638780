package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

func (a *app) restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "after a proxy reboot or crash: rebuild sessions, metadata, clone (keeping hydration progress) and exports from the state",
		Action: func(c *cli.Context) error {
			p, err := a.planner()
			if err != nil {
				return err
			}
			res, rerr := p.Restore(c.Context)
			if a.g.json {
				if err := printJSON(a.stdout, res); err != nil {
					return err
				}
				return rerr
			}
			for _, r := range res {
				var kinds []string
				for _, k := range r.Rebuilt {
					kinds = append(kinds, string(k))
				}
				line := fmt.Sprintf("%s: %s", r.Volume, r.Step)
				if len(kinds) > 0 {
					line += ", rebuilt " + strings.Join(kinds, ", ")
				}
				if r.Error != "" {
					line += ": FAILED: " + r.Error
				}
				fmt.Fprintln(a.stdout, line)
				if r.Hint != "" {
					fmt.Fprintf(a.stdout, "  %s\n", r.Hint)
				}
			}
			if len(res) == 0 {
				fmt.Fprintln(a.stdout, "no volumes to restore")
			}
			return rerr
		},
	}
}
