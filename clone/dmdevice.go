package clone

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lunferry/lunferry/dm"
	"golang.org/x/sys/unix"
)

// ErrMetadataFailed is wrapped by DMDevice.Progress when dm-clone reports
// its metadata failed ("Fail") or degraded to read-only ("ro"): hydration
// cannot continue on this device.
var ErrMetadataFailed = errors.New("dm-clone metadata failed")

// DMDevice is a dm-clone device reached through a device-mapper client. It
// implements Device (for Controller) and Swapper (for Finalize).
type DMDevice struct {
	// Client is an open device-mapper client.
	Client *dm.Client
	// DMName is the device-mapper name of the clone device.
	DMName string
	// Replace tunes the live swap of Finalize (the default flushes I/O
	// before the swap, which is what a clone→linear swap needs).
	Replace dm.ReplaceOptions
}

var (
	_ Device  = DMDevice{}
	_ Swapper = DMDevice{}
)

// Name returns the device-mapper name.
func (d DMDevice) Name() string { return d.DMName }

// Progress reads and converts the clone status. It fails with ErrNotClone
// when the live table is not a single clone line, and with
// ErrMetadataFailed when dm-clone's metadata failed or is read-only.
func (d DMDevice) Progress(ctx context.Context) (Progress, error) {
	lines, err := d.Client.StatusNoFlush(ctx, d.DMName)
	if err != nil {
		return Progress{}, err
	}
	if len(lines) != 1 || lines[0].Type != "clone" {
		return Progress{}, fmt.Errorf("clone: %s: %w (its table has %s)", d.DMName, ErrNotClone, describeLines(lines))
	}
	st, err := dm.ParseCloneStatus(lines[0].Params)
	if err != nil {
		return Progress{}, err
	}
	if st.Failed || st.MetadataMode != "rw" {
		return Progress{}, fmt.Errorf("clone: %s: %w (metadata mode %q): hydration cannot continue; abort the migration (the old LUN is intact) and check the metadata device and the kernel log",
			d.DMName, ErrMetadataFailed, st.MetadataMode)
	}
	return Progress{
		HydratedRegions:  st.HydratedRegions,
		TotalRegions:     st.TotalRegions,
		HydratingRegions: st.HydratingRegions,
		RegionSize:       uint64(st.RegionSize),
		HydrationEnabled: st.HydrationEnabled(),
		Threshold:        st.HydrationThreshold,
		BatchSize:        st.HydrationBatchSize,
	}, nil
}

// describeLines names the target types of a table, for messages.
func describeLines(lines []dm.RawLine) string {
	if len(lines) == 0 {
		return "no lines"
	}
	types := make([]string, len(lines))
	for i, l := range lines {
		types[i] = l.Type
	}
	return fmt.Sprintf("%d line(s): %s", len(lines), strings.Join(types, ", "))
}

// SetHydration sends enable_hydration or disable_hydration.
func (d DMDevice) SetHydration(ctx context.Context, enabled bool) error {
	if enabled {
		return d.Client.EnableHydration(ctx, d.DMName)
	}
	return d.Client.DisableHydration(ctx, d.DMName)
}

// SetThreshold sends hydration_threshold.
func (d DMDevice) SetThreshold(ctx context.Context, regions uint) error {
	return d.Client.SetHydrationThreshold(ctx, d.DMName, regions)
}

// SetBatchSize sends hydration_batch_size.
func (d DMDevice) SetBatchSize(ctx context.Context, regions uint) error {
	return d.Client.SetHydrationBatchSize(ctx, d.DMName, regions)
}

// Length returns the live table's length in sectors.
func (d DMDevice) Length(ctx context.Context) (uint64, error) {
	lines, err := d.Client.Table(ctx, d.DMName)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, l := range lines {
		n += uint64(l.Length)
	}
	return n, nil
}

// LinearOver reports whether the live table is one linear line over device
// (a /dev path or MAJ:MIN) from its sector 0.
func (d DMDevice) LinearOver(ctx context.Context, device string) (bool, error) {
	want, err := devNum(device)
	if err != nil {
		return false, err
	}
	lines, err := d.Client.Table(ctx, d.DMName)
	if err != nil {
		return false, err
	}
	if len(lines) != 1 || lines[0].Type != "linear" || lines[0].Start != 0 {
		return false, nil
	}
	f := strings.Fields(lines[0].Params)
	if len(f) != 2 || f[1] != "0" {
		return false, nil
	}
	got, err := dm.ParseDevNum(f[0])
	if err != nil {
		return false, fmt.Errorf("clone: %s: linear table device %q: %w", d.DMName, f[0], err)
	}
	return got == want, nil
}

// SwapToLinear replaces the live table with one linear line over device
// with dm.Client.Replace (load inactive, suspend with flush, resume).
func (d DMDevice) SwapToLinear(ctx context.Context, device string, length uint64) (time.Duration, error) {
	table := dm.Table{{Start: 0, Length: dm.Sectors(length), Target: dm.Linear{Device: device}}}
	res, err := d.Client.Replace(ctx, d.DMName, table, d.Replace)
	if err != nil {
		return res.Suspended, err
	}
	return res.Suspended, nil
}

// devNum resolves a block device path (or MAJ:MIN) to its device number.
func devNum(device string) (dm.DevNum, error) {
	if !strings.HasPrefix(device, "/") {
		return dm.ParseDevNum(device)
	}
	var st unix.Stat_t
	if err := unix.Stat(device, &st); err != nil {
		return dm.DevNum{}, fmt.Errorf("clone: stat %s: %w", device, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return dm.DevNum{}, fmt.Errorf("clone: %s is not a block device", device)
	}
	return dm.DevNum{Major: unix.Major(uint64(st.Rdev)), Minor: unix.Minor(uint64(st.Rdev))}, nil
}
