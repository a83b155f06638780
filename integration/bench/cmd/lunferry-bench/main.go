// Command lunferry-bench is lunferry's lab bench (`make bench`): on the host
// it boots the lab VM once, runs itself inside it with -guest, and writes
// results.json, results.md and the plots; see package integration/bench.
//
//	lunferry-bench [-mode full|smoke] [-only GROUP,...] [-out out/bench] [-bin bin/e2e]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/lunferry/lunferry/integration/bench"
)

func main() {
	mode := flag.String("mode", "full", "full (make bench) or smoke (tiny sizes, one repetition)")
	out := flag.String("out", "out/bench", "directory for results.json, results.md and the plots")
	bin := flag.String("bin", "bin/e2e", "directory holding lunferry and lunferry-lab (make e2e-bin)")
	only := flag.String("only", "", "measure only these figure groups (comma-separated: "+strings.Join(bench.GroupIDs, ", ")+"); every group when empty")
	guest := flag.Bool("guest", false, "measure (inside the lab VM; the host side passes it)")
	flag.Parse()
	if err := run(*mode, *only, *out, *bin, *guest); err != nil {
		fmt.Fprintln(os.Stderr, "lunferry-bench:", err)
		os.Exit(1)
	}
}

func run(mode, only, out, bin string, guest bool) error {
	p, err := bench.ParamsFor(mode)
	if err != nil {
		return err
	}
	if p, err = p.WithGroups(only); err != nil {
		return err
	}
	if guest {
		return bench.RunGuest(context.Background(), p, bin, os.Stdout)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if bin, err = bench.PrivateBinaries(bin); err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	res, err := bench.RunLab(context.Background(), bench.LabOptions{Params: p, Out: out, Log: os.Stdout, Env: os.Environ(),
		Command: []string{exe, "-guest", "-mode", mode, "-only", only, "-bin", bin}})
	if res != nil {
		fmt.Print(res.Markdown())
		if err == nil && len(res.Failures) > 0 {
			err = fmt.Errorf("%d failures (see %s/results.md)", len(res.Failures), out)
		}
	}
	return err
}
