package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/internal/loop"
	"github.com/lunferry/lunferry/plan"
)

// eraBlockSizes are the dm-era block sizes (sectors) the era overhead is
// measured at: the smallest dm-era takes, lunferry's default and a large
// one, so the default can be chosen by measurement.
var eraBlockSizes = []dm.Sectors{8, plan.DefaultEraBlockSectors, 1024}

// eraJobNames are the host jobs (HostJobs, so the same block sizes and
// iodepths as the other host figures) the era overhead is measured with:
// writes only, as dm-era passes reads straight through.
var eraJobNames = []string{"randwrite", "seqwrite"}

// eraJobs returns the HostJobs named in eraJobNames.
func eraJobs() []Job {
	var jobs []Job
	for _, n := range eraJobNames {
		for _, j := range HostJobs {
			if j.Name == n {
				jobs = append(jobs, j)
			}
		}
	}
	return jobs
}

// eraFigureID names the era overhead figure of a job at a block size:
// "era-overhead-randwrite-b128".
func eraFigureID(job string, bs dm.Sectors) string {
	return fmt.Sprintf("era-overhead-%s-b%d", job, bs)
}

// eraGoal holds the default block size (what every volume runs with) to
// at most a 10 % loss; the others are there to choose by.
func eraGoal(bs dm.Sectors) Goal {
	if bs == plan.DefaultEraBlockSectors {
		return AtLeast(0.9)
	}
	return Reported()
}

// eraTable is the era device measured: as lunferry stacks it over a
// volume's dm device, over origin (the linear device), its metadata on
// meta, tracked in blocks of bs sectors.
func eraTable(meta, origin string, sectors, bs dm.Sectors) dm.Table {
	return dm.Table{{Length: sectors, Target: dm.Era{Metadata: meta, Origin: origin, BlockSize: bs}}}
}

// diskSectors reads a disk's size from sysfs (/dev/sdX → /sys/class/block/sdX/size).
func diskSectors(dev string) (dm.Sectors, error) {
	p := filepath.Join("/sys/class/block", filepath.Base(dev), "size")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("bench: size of %s: %w", dev, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: size of %s: %s: %w", dev, p, err)
	}
	return dm.Sectors(n), nil
}

// eraOverhead measures host writes on an era device against the linear
// device it sits on, over the new array's LUN (the proxy's own session;
// every volume of the earlier groups is retired, and hydration overwrites
// that LUN anyway), for each era block size and write job, the two
// devices' order alternating with the repetition.
func (g *Guest) eraOverhead(ctx context.Context) (err error) {
	arr := g.cfg.Arrays["new"]
	disk, err := g.proxy.Login(arr.Portals[0], arr.IQN, time.Minute)
	if err != nil {
		return fmt.Errorf("bench: era: %w", err)
	}
	defer func() {
		if lerr := g.proxy.Logout(arr.Portals[0], arr.IQN); lerr != nil {
			err = errors.Join(err, fmt.Errorf("bench: era: %w", lerr))
		}
	}()
	sectors, err := diskSectors(disk)
	if err != nil {
		return err
	}
	c, err := dm.Open(dm.Options{})
	if err != nil {
		return fmt.Errorf("bench: era: %w", err)
	}
	defer c.Close()
	linName := "lunferry-benchera-" + g.suffix
	linDev, undo, err := createDM(ctx, c, linName, dm.Table{{Length: sectors, Target: dm.Linear{Device: disk}}})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, undo()) }()

	type key struct {
		job string
		bs  dm.Sectors
	}
	lin, era := map[key][]float64{}, map[key][]float64{}
	for rep := 0; rep < g.P.Reps; rep++ {
		for _, bs := range eraBlockSizes {
			for _, j := range eraJobs() {
				l, e, err := g.eraPair(ctx, c, linName, linDev, sectors, bs, j, rep)
				if err != nil {
					return err
				}
				k := key{j.Name, bs}
				lin[k], era[k] = append(lin[k], l), append(era[k], e)
			}
		}
	}
	for _, bs := range eraBlockSizes {
		for _, j := range eraJobs() {
			k := key{j.Name, bs}
			how := fmt.Sprintf("%s for %s (+%s ramp) on a dm-era device (block %d sectors, metadata on a loop device over a file in guest RAM) over a dm linear device, vs that linear device alone, over the new array's LUN (the proxy's session)",
				fioHow(j), g.P.EraRuntime, g.P.FioRamp, bs)
			f := RatioFigure(eraFigureID(j.Name, bs), fmt.Sprintf("host %s via era (block %d sectors) / linear", j.Name, bs), how, eraGoal(bs), era[k], lin[k])
			f.Note = "a fresh era device per sample: a block's first write in the era waits for a metadata commit (what the host meets after cutover or a checkpoint), unless fio's ramp wrote it"
			g.figure(f)
		}
	}
	return nil
}

// eraPair builds a fresh era device of block size bs over the linear
// device linDev, runs job once on each (linear first on even
// repetitions), tears the era device down and returns both rates (bytes/s).
func (g *Guest) eraPair(ctx context.Context, c *dm.Client, linName, linDev string, sectors, bs dm.Sectors, job Job, rep int) (lin, era float64, err error) {
	t0 := time.Now()
	meta := filepath.Join(g.dir, "bench-era.meta")
	size := plan.EraMetadataBytes(sectors.Bytes(), uint64(bs))
	// Zeros written here, not left to AttachFile's fallocate: that failed
	// with EINTR on the guest's tmpfs overlay (the Go runtime's preemption
	// signal); a file already of its size is attached as it is.
	if err := os.WriteFile(meta, make([]byte, size), 0o600); err != nil {
		return 0, 0, fmt.Errorf("bench: era metadata: %w", err)
	}
	var loops loop.Devices
	mdev, err := loops.AttachFile(ctx, meta, size, true)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: era metadata: %w", err)
	}
	defer func() {
		if derr := loops.DetachFile(meta, true); derr != nil {
			err = errors.Join(err, fmt.Errorf("bench: era metadata: %w", derr))
		}
	}()
	eraDev, undo, err := createDM(ctx, c, linName+".era", eraTable(mdev, linDev, sectors, bs))
	if err != nil {
		return 0, 0, err
	}
	// Removed before the metadata's loop device is detached (deferred later, runs first).
	defer func() { err = errors.Join(err, undo()) }()
	devs := [2]string{linDev, eraDev}
	var got [2]float64
	var took [2]time.Duration
	for k := range devs {
		i := (k + rep) % len(devs)
		start := time.Now()
		r, err := RunFio(ctx, devs[i], job, g.P.EraRuntime, g.P.FioRamp, "")
		if err != nil {
			return 0, 0, err
		}
		if r.Errors != 0 {
			return 0, 0, fmt.Errorf("bench: fio %s on %s: %d errors", job.Name, devs[i], r.Errors)
		}
		got[i], took[i] = r.BytesPerSec, time.Since(start)
	}
	fmt.Fprintf(g.out, "bench: era b%d %s: linear %.1f MiB/s, era %.1f MiB/s (fio took %.1fs, %.1fs; pair %.1fs)\n", bs, job.Name,
		got[0]/(1<<20), got[1]/(1<<20), took[0].Seconds(), took[1].Seconds(), time.Since(t0).Seconds())
	return got[0], got[1], nil
}

// createDM creates a device-mapper device and returns its node and the
// function that removes it.
func createDM(ctx context.Context, c *dm.Client, name string, table dm.Table) (string, func() error, error) {
	uuid := dm.UUIDPrefix + strings.TrimPrefix(name, dm.NamePrefix)
	if _, err := c.Create(ctx, name, uuid, table); err != nil {
		return "", nil, fmt.Errorf("bench: era: create %s (%s): %w", name, table, err)
	}
	remove := func() error {
		// A fresh context: the caller's may be done when tearing down.
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Remove(rctx, name, dm.RemoveOptions{Retries: 10}); err != nil {
			return fmt.Errorf("bench: era: remove %s: %w", name, err)
		}
		return nil
	}
	dev, err := c.DevicePath(name)
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("bench: era: %w", err), remove())
	}
	return dev, remove, nil
}
