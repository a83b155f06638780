package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
)

// Marker starts every line the guest prints for the host to collect.
const Marker = "LUNFERRY-BENCH"

// Record is one collected line: a figure, a time series or a failure.
type Record struct {
	Figure  *Figure `json:"figure,omitempty"`
	Series  *Series `json:"series,omitempty"`
	Failure string  `json:"failure,omitempty"`
}

// Guest measures inside the lab VM. Its scene: the old, new and scratch
// arrays (file backed, in guest RAM), the host (lab.Host, iface labhost),
// the proxy's own iface for the raw copies and the two-hop path.
type Guest struct {
	P Params
	// Lunferry and LabTool are the binaries the runbook's hooks and the
	// bench run.
	Lunferry, LabTool string
	out               io.Writer
	dir, cfgPath      string
	cfg               *lab.Config
	suffix            string
	hook              string
	// proxy is an iface with the proxy's initiator name (not lunferry's
	// default iface): dd's and the two-hop path's sessions.
	proxy lab.Host
	// scratchDisk is the proxy's disk of the scratch LUN; twohopIQN the
	// hand-built pass-through over it.
	scratchDisk, twohopIQN string
}

// RunGuest sets the scene up and measures every figure, printing each as
// soon as it is measured (a later failure keeps the earlier figures). A
// failed figure group is printed as a failure and the next one runs.
func RunGuest(ctx context.Context, p Params, binDir string, out io.Writer) error {
	g := &Guest{P: p, Lunferry: filepath.Join(binDir, "lunferry"), LabTool: filepath.Join(binDir, "lunferry-lab"), out: out}
	if err := g.setup(); err != nil {
		return err
	}
	for _, grp := range g.groups() {
		if !p.Runs(grp.id) {
			continue
		}
		start := time.Now()
		fmt.Fprintf(out, "bench: %s ...\n", grp.name)
		before := objects("/", g.dir)
		if err := grp.fn(ctx); err != nil {
			g.emit(Record{Failure: grp.name + ": " + err.Error()})
		}
		if err := leftBehind(grp.name, leftovers(before, objects("/", g.dir))); err != nil {
			g.emit(Record{Failure: err.Error()})
		}
		fmt.Fprintf(out, "bench: %s: %.0fs\n", grp.name, time.Since(start).Seconds())
	}
	return nil
}

// group is a set of figures measured together; id names it for -only.
type group struct {
	id, name string
	fn       func(context.Context) error
}

// GroupIDs are the figure groups in the order a run measures them.
var GroupIDs = []string{"hydration", "load", "adaptive", "throttle", "scale", "era", "verify", "sweep", "thin"}

func (g *Guest) groups() []group {
	return []group{
		{"hydration", "hydration, host I/O after finalize, finalize's hold", g.hydrationCycles},
		{"load", "host I/O and latency during hydration", g.loadCycles},
		{"adaptive", "adaptive throttle", g.adaptive},
		{"throttle", "throttle accuracy", g.throttle},
		{"scale", "scale", g.scale},
		{"era", "era overhead on host writes", g.eraOverhead},
		{"verify", "verify rate", g.verifyRate},
		{"sweep", "region size × threshold × batch sweep", g.sweep},
		{"thin", "thin old LUN", g.thinOld},
	}
}

func (g *Guest) emit(r Record) {
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(Record{Failure: "marshal: " + err.Error()})
	}
	fmt.Fprintf(g.out, "%s %s\n", Marker, b)
}

func (g *Guest) figure(f Figure) {
	fmt.Fprintf(g.out, "bench: %s: %.3g [%.3g–%.3g] (n=%d)\n", f.Name, f.Summary.Median, f.Summary.Min, f.Summary.Max, f.Summary.N)
	g.emit(Record{Figure: &f})
}

// setup brings up the arrays (the old one filled with a pattern), the
// hosts' ifaces and the two-hop pass-through.
func (g *Guest) setup() error {
	dir, err := os.MkdirTemp("", "lunferry-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	g.dir, g.cfgPath = dir, filepath.Join(dir, "lab.json")
	g.suffix = strings.TrimPrefix(vmtest.RandomName("b"), "lunferry-b-")
	size := g.P.LUNBytes
	cfg := lab.DefaultConfig(dir, filepath.Join(dir, "old.img"), size, filepath.Join(dir, "new.img"), size)
	for _, a := range cfg.Arrays {
		a.IQN += "-" + g.suffix
	}
	cfg.Arrays["old"].ACLs = []string{cfg.ProxyIQN}
	cfg.Arrays["scratch"] = &lab.Array{Name: "scratch", IQN: "iqn.2026-11.io.lunferry.lab:scratch-array-" + g.suffix,
		Portals: []string{lab.NewPortal}, Backing: filepath.Join(dir, "scratch.img"), SizeBytes: size,
		ACLs: []string{cfg.ProxyIQN, cfg.Host.IQN}, HBAIndex: lab.RandomHBAIndex()}
	g.cfg = cfg
	if err := fillPattern(cfg.Arrays["old"].Backing, size); err != nil {
		return err
	}
	for _, r := range []string{"old", "new", "scratch"} {
		if err := cfg.Arrays[r].Up(); err != nil {
			return err
		}
	}
	if err := g.writeHook(); err != nil {
		return err
	}
	g.proxy = lab.Host{Iface: "benchproxy", IQN: cfg.ProxyIQN}
	if g.scratchDisk, err = g.proxy.Login(lab.NewPortal, cfg.Arrays["scratch"].IQN, time.Minute); err != nil {
		return err
	}
	// The two-hop pass-through: LIO iblock straight over the proxy's own
	// session to the scratch LUN, exported to the host, no dm.
	g.twohopIQN = "iqn.2026-11.io.lunferry.lab:twohop-" + g.suffix
	cfg.Arrays["twohop"] = &lab.Array{Name: "twohop", IQN: g.twohopIQN, Portals: []string{cfg.ExportPortal},
		Backing: g.scratchDisk, ACLs: []string{cfg.Host.IQN}, HBAIndex: lab.RandomHBAIndex()}
	if err := cfg.Arrays["twohop"].Up(); err != nil {
		return err
	}
	return cfg.Save(g.cfgPath)
}

// fillPattern writes size bytes of a pattern that differs per MiB into
// path (hydration then copies real data, not holes).
func fillPattern(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size && err == nil; off += int64(len(buf)) {
		for i := range buf {
			buf[i] = byte(i>>9) ^ byte(off>>20)
		}
		_, err = f.WriteAt(buf[:min(int64(len(buf)), size-off)], off)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: fill %s: %w", path, err)
	}
	return nil
}

// writeHook writes the post-cutover hook: the host logs in to the export
// (root-owned, mode 0755, as lunferry wants its hooks).
func (g *Guest) writeHook() error {
	g.hook = filepath.Join(g.dir, "host-login")
	script := "#!/bin/sh\nset -eu\nexec \"$LUNFERRY_LAB_TOOL\" host login proxy\n"
	if err := os.WriteFile(g.hook, []byte(script), 0o755); err != nil {
		return fmt.Errorf("bench: hook: %w", err)
	}
	return nil
}
