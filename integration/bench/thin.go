package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/plan"
)

// thinRegion is the thin figures' clone region (the default), and
// thinWritten the share of its regions the old LUN holds data in.
const (
	thinRegion  = 64 << 10
	thinWritten = 10
)

// thinOld measures a thin old LUN on stgt (a sparse file, 10 % of its
// regions written at random, GET LBA STATUS from the file's holes)
// migrated onto the new array's LUN made thin and emptied, lunferry skipping what was never
// written, against the same file served fully provisioned (copied in
// full), interleaved. The time is the cutover's discards plus hydration
// from `migrate start` until the clone reports every region; every volume
// must then verify clean.
func (g *Guest) thinOld(ctx context.Context) error {
	state := filepath.Join(g.dir, "state-thin")
	size := g.P.LUNBytes
	backing := filepath.Join(g.dir, "tgt-old.img")
	defer os.Remove(backing) // after the arrays over it are down (deferred later)
	written, err := writeScattered(backing, size)
	if err != nil {
		return err
	}
	// The new array's LUN turns thin, unmapped blocks reading as zeroes
	// (every other figure group has run by now).
	if err := g.cfg.Arrays["new"].SetIdentity(lab.LUNIdentity{UnitSerial: "bench-thin-" + g.suffix, Thin: true, ZeroesUnmapped: true}); err != nil {
		return err
	}
	arrays := map[bool]*lab.TgtArray{}
	for i, thick := range []bool{false, true} {
		a := &lab.TgtArray{IQN: fmt.Sprintf("iqn.2026-12.io.lunferry.lab:bench-tgt-%v-%s", thick, g.suffix),
			Portal: fmt.Sprintf("127.0.0.5:%d", 3261+i), Backing: backing, SizeBytes: size,
			ControlPort: 1000 + rand.IntN(30000), Log: filepath.Join(g.dir, fmt.Sprintf("tgtd-%v.log", thick)), Thick: thick}
		if err := a.Up(); err != nil {
			return err
		}
		defer a.Down()
		arrays[thick] = a
	}
	var took = map[bool][]float64{}
	var alloc []float64
	n := 0
	for rep := 0; rep < g.P.Reps; rep++ {
		for k := 0; k < 2; k++ {
			thick := (k+rep)%2 == 1
			n++
			d, a, err := g.thinOnce(ctx, state, fmt.Sprintf("thin%d", n), arrays[thick])
			if err != nil {
				return err
			}
			took[thick] = append(took[thick], d.Seconds())
			if !thick {
				alloc = append(alloc, float64(a)/float64(size))
			}
			fmt.Fprintf(g.out, "bench: thin %d thick=%v: %.1fs, the new LUN allocates %.1f %%\n", rep, thick, d.Seconds(), 100*float64(a)/float64(size))
		}
	}
	how := fmt.Sprintf("a %d MiB old LUN on stgt over a sparse file, %d %% of its 64 KiB regions written (%d bytes), onto the new array's LIO LUN made thin (unmap_zeroes_data) and emptied; thin: what GET LBA STATUS reports unmapped is discarded on the clone at cutover; full: the same file served without thin provisioning",
		size>>20, thinWritten, written)
	f := RatioFigure("thin-hydration", "thin old LUN: cutover's discards + hydration / full copy", how, AtMost(0.2), took[false], took[true])
	f.Note = "goal: about the share written (0.1); hydration timed from `migrate start` to the first status sample with every region hydrated"
	g.figure(f)
	g.figure(NewFigure("thin-allocation", "thin old LUN: new LUN allocated / size", how+"; st_blocks of the new LUN's file after hydration", "ratio", AtMost(0.2), alloc))
	return nil
}

// thinOnce migrates old onto the new array's LUN emptied, checks the copy with
// verify and returns the time of the discards and the hydration, and the
// new LUN's allocation in bytes.
func (g *Guest) thinOnce(ctx context.Context, state, name string, old *lab.TgtArray) (time.Duration, int64, error) {
	// The new array's LUN, emptied: every block a hole again, as a fresh
	// thin LUN's (nothing is logged in to it between volumes).
	nw := g.cfg.Arrays["new"]
	if err := punchAll(nw.Backing); err != nil {
		return 0, 0, err
	}
	sp, err := g.spec(name, g.cfg.Arrays["old"], nw, 0, "")
	if err != nil {
		return 0, 0, err
	}
	sp.Old = plan.LUN{Portal: old.Portal, IQN: old.IQN, LUN: lab.TgtDiskLUN, SizeBytes: plan.Bytes(old.SizeBytes)}
	sp.RegionSectors = thinRegion / 512
	if err := g.cutover(ctx, state, sp); err != nil {
		msg, _ := exec.Command("dmesg").Output()
		if i := len(msg) - 3000; i > 0 {
			msg = msg[i:]
		}
		return 0, 0, fmt.Errorf("%w\nkernel log:\n%s", err, msg)
	}
	out, err := g.lf(ctx, state, "--json", "volume", "show", name)
	if err != nil {
		return 0, 0, err
	}
	var v plan.Volume
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return 0, 0, fmt.Errorf("bench: volume show --json: %w", err)
	}
	var discards time.Duration
	if v.Thin != nil {
		discards = time.Duration(v.Thin.Took)
	}
	smp := startSampler(name, 50*time.Millisecond)
	start := time.Now()
	if _, err := g.lf(ctx, state, "migrate", "start", name); err != nil {
		smp.halt()
		return 0, 0, err
	}
	err = smp.waitHydrated(ctx, 30*time.Minute)
	samples := smp.halt()
	if err != nil {
		return 0, 0, err
	}
	var hydrated time.Duration
	for _, p := range samples {
		if p.total > 0 && p.hydrated == p.total {
			hydrated = p.at.Sub(start)
			break
		}
	}
	alloc, err := lab.AllocatedBytes(nw.Backing)
	if err != nil {
		return 0, 0, err
	}
	if _, err := g.lf(ctx, state, "migrate", "verify", name); err != nil {
		return 0, 0, err
	}
	return discards + hydrated, alloc, g.retire(ctx, state, sp, false)
}

// writeScattered makes path a sparse file of size bytes with data in
// thinWritten % of its thinRegion regions, chosen at random (never a zero
// block), and returns the bytes written.
func writeScattered(path string, size int64) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	r := rand.New(rand.NewPCG(13, 17))
	regions := int(size / thinRegion)
	var written int64
	b := make([]byte, thinRegion)
	for _, k := range r.Perm(regions)[:regions*thinWritten/100] {
		for i := range b {
			b[i] = byte(r.Uint32()) | 1
		}
		if _, err := f.WriteAt(b, int64(k)*thinRegion); err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
		written += thinRegion
	}
	return written, f.Sync()
}

// punchAll deallocates every block of the file at path.
func punchAll(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, st.Size()); err != nil {
		return fmt.Errorf("bench: punch %s: %w", path, err)
	}
	return nil
}
