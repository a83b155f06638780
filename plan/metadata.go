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
