package clone

import (
	"context"
	"errors"
	"time"
)

// SectorSize is the size of a device-mapper sector in bytes.
const SectorSize = 512

// Device is the part of a dm-clone device the controller needs. The real
// one is DMDevice; tests use a simulation.
type Device interface {
	// Progress reads the device's status. It returns an error wrapping
	// ErrNotClone when the live table is not a clone target.
	Progress(ctx context.Context) (Progress, error)
	// SetHydration sends enable_hydration (true) or disable_hydration.
	SetHydration(ctx context.Context, enabled bool) error
	// SetThreshold sends "hydration_threshold N": at most N regions are
	// being copied at any one time (0 stops the background copy).
	SetThreshold(ctx context.Context, regions uint) error
	// SetBatchSize sends "hydration_batch_size N": contiguous regions are
	// copied N at a time. The kernel counts a batch being assembled
	// against the threshold, so the effective copy size is
	// min(batch, threshold) regions.
	SetBatchSize(ctx context.Context, regions uint) error
}

// ErrNotClone is returned (wrapped) by Device.Progress when the live table
// of the device is not a clone target, e.g. after Finalize.
var ErrNotClone = errors.New("device is not a dm-clone device")

// Progress is a dm-clone status as the controller sees it.
type Progress struct {
	// HydratedRegions counts regions already valid on the destination
	// (copied, or fully overwritten by the host).
	HydratedRegions uint64 `json:"hydrated_regions"`
	// TotalRegions is the number of regions of the device.
	TotalRegions uint64 `json:"total_regions"`
	// HydratingRegions is the number of regions being copied right now.
	HydratingRegions uint64 `json:"hydrating_regions"`
	// RegionSize is the region size in 512-byte sectors.
	RegionSize uint64 `json:"region_size_sectors"`
	// HydrationEnabled is false when the status lists no_hydration.
	HydrationEnabled bool `json:"hydration_enabled"`
	// Threshold and BatchSize are the core args the kernel reports.
	Threshold uint `json:"hydration_threshold"`
	// BatchSize is the hydration batch size in regions.
	BatchSize uint `json:"hydration_batch_size"`
}

// RegionBytes is the region size in bytes.
func (p Progress) RegionBytes() uint64 { return p.RegionSize * SectorSize }

// Complete reports whether every region is hydrated.
func (p Progress) Complete() bool {
	return p.TotalRegions > 0 && p.HydratedRegions >= p.TotalRegions
}

// HydratedBytes is the hydrated amount in bytes.
func (p Progress) HydratedBytes() uint64 { return p.HydratedRegions * p.RegionBytes() }

// TotalBytes is TotalRegions times the region size; it exceeds the device
// size by less than one region when the size is not a multiple of it.
func (p Progress) TotalBytes() uint64 { return p.TotalRegions * p.RegionBytes() }

// Fraction is the hydrated fraction in [0, 1].
func (p Progress) Fraction() float64 {
	if p.TotalRegions == 0 {
		return 0
	}
	f := float64(p.HydratedRegions) / float64(p.TotalRegions)
	if f > 1 {
		f = 1
	}
	return f
}

// Clock is the time source of the controller; tests use a fake one.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the Clock of the running system.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
