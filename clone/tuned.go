package clone

import "github.com/lunferry/lunferry/dm"

// Tuned hydration settings, sent as they are when the throttle is Unlimited
// and used as the ceiling of the Controller when it is not. The kernel's
// defaults (hydration_threshold 1, hydration_batch_size 1) hydrated 5-10x
// slower over iSCSI in the lab (integration/README.md), so a Controller
// never leaves them in place.
//
// The measured point is 64 regions of 64 KiB = 4 MiB in flight, copied in
// 16 x 64 KiB = 1 MiB kcopyd requests. For other region sizes the
// Controller keeps those byte amounts (TunedFor), not the region counts.
const (
	// RecommendedRegionSize is the region size (sectors) of the
	// measurement above; 64 KiB regions keep the metadata small and the
	// copy efficient.
	RecommendedRegionSize = 128
	// TunedThreshold is hydration_threshold at RecommendedRegionSize.
	TunedThreshold uint = 64
	// TunedBatchSize is hydration_batch_size at RecommendedRegionSize.
	TunedBatchSize uint = 16
	// TunedInFlightBytes is the copy volume in flight at full speed.
	TunedInFlightBytes = uint64(TunedThreshold) * RecommendedRegionSize * dm.SectorSize
	// TunedCopyBytes is the size of one kcopyd request at full speed.
	TunedCopyBytes = uint64(TunedBatchSize) * RecommendedRegionSize * dm.SectorSize
)

// TunedFor returns the full-speed threshold and batch size for a region
// size in sectors: the measured TunedInFlightBytes and TunedCopyBytes
// expressed in regions (at least 1).
func TunedFor(regionSectors uint64) (threshold, batch uint) {
	if regionSectors == 0 {
		return TunedThreshold, TunedBatchSize
	}
	rb := regionSectors * dm.SectorSize
	threshold, batch = uint(TunedInFlightBytes/rb), uint(TunedCopyBytes/rb)
	if threshold < 1 {
		threshold = 1
	}
	if batch < 1 {
		batch = 1
	}
	return threshold, batch
}
