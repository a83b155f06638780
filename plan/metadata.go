package plan

// MetadataBytes returns the size lunferry gives a dm-clone metadata device
// for a volume of sizeBytes split in regions of regionSectors.
//
// dm-clone (Documentation/admin-guide/device-mapper/dm-clone.rst,
// drivers/md/dm-clone-metadata.c) keeps in 4 KiB metadata blocks a
// superblock, the metadata space map and a bitset of one bit per region
// stored as a persistent array of 64-bit words (about 500 words, 32000
// regions, per block) plus its btree. The raw need is thus about
// 4 KiB + regions/8 bytes plus a few percent. We give four times the bitset
// plus 4 MiB for the superblock, space map and btree, rounded up to a MiB:
// 12 MiB for 1 TiB in 64 KiB regions: small enough to allocate in full at
// prepare, so a full disk is found then and not by dm-clone mid-hydration.
func MetadataBytes(sizeBytes, regionSectors uint64) uint64 {
	if regionSectors == 0 {
		regionSectors = DefaultRegionSectors
	}
	regionBytes := regionSectors * 512
	regions := (sizeBytes + regionBytes - 1) / regionBytes
	bitset := (regions + 7) / 8
	const mib = 1 << 20
	total := 4*mib + 4*bitset
	return (total + mib - 1) / mib * mib
}

// MinMetadataBytes is the least lunferry accepts for a metadata device the
// admin gives: the bitset twice over (array blocks are not full, the btree
// and the space map take their share) plus 1 MiB.
func MinMetadataBytes(sizeBytes, regionSectors uint64) uint64 {
	if regionSectors == 0 {
		regionSectors = DefaultRegionSectors
	}
	regionBytes := regionSectors * 512
	regions := (sizeBytes + regionBytes - 1) / regionBytes
	return 1<<20 + 2*((regions+7)/8)
}

// EraMetadataBytes returns the size lunferry gives a dm-era metadata file
// for a volume of sizeBytes tracked in blocks of blockSectors.
//
// dm-era (drivers/md/dm-era-target.c) keeps an era array of 32 bits per
// block, two writeset bitsets of one bit per block, and the bitsets of
// eras not yet digested into the array, in 4 KiB blocks with btrees and a
// space map. We give the array twice over, room for eight bitsets, plus
// 4 MiB, rounded up to a MiB: 148 MiB for 1 TiB in 64 KiB blocks.
func EraMetadataBytes(sizeBytes, blockSectors uint64) uint64 {
	if blockSectors == 0 {
		blockSectors = DefaultEraBlockSectors
	}
	blockBytes := blockSectors * 512
	blocks := (sizeBytes + blockBytes - 1) / blockBytes
	const mib = 1 << 20
	total := 4*mib + 2*4*blocks + 8*((blocks+7)/8)
	return (total + mib - 1) / mib * mib
}
