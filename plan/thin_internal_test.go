package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/initiator/scsi"
)

func TestUnmappedRegions(t *testing.T) {
	const region = 8 * 4096 // 32 KiB, 4 KiB logical blocks
	m := scsi.LBAMap{Capacity: scsi.Capacity{LogicalBlockSize: 4096, LBPME: true, LBPRZ: true}, Extents: []scsi.LBAExtent{
		{LBA: 0, Blocks: 3, Status: scsi.Deallocated},  // inside region 0: no whole region
		{LBA: 3, Blocks: 13, Status: scsi.Mapped},      // to 64 KiB
		{LBA: 16, Blocks: 16, Status: scsi.Anchored},   // regions 2, 3
		{LBA: 32, Blocks: 9, Status: scsi.Deallocated}, // region 4 and one block: merged
		{LBA: 41, Blocks: 7, Status: scsi.MappedOrUnknown},
		{LBA: 48, Blocks: 20, Status: scsi.Deallocated}, // regions 6, 7; the size ends at block 60
	}}
	unmapped, out := unmappedRegions(m, region, 60*4096)
	assert.Equal(t, uint64((3+16+9+12)*4096), unmapped)
	// Regions 2-4 (anchored, then deallocated: merged), region 6; region
	// 7 is cut by the size.
	assert.Equal(t, []clone.Extent{{Offset: 2 * region, Length: 3 * region}, {Offset: 6 * region, Length: region}}, out)
}

func TestNewLUNZeroes(t *testing.T) {
	thin := scsi.Identity{Capacity: scsi.Capacity{LogicalBlockSize: 512, LBPME: true, LBPRZ: true}}
	assert.Empty(t, newLUNZeroes(thin, 65536))
	ws := thin
	ws.Provisioning = &scsi.Provisioning{LBPWS: true}
	assert.Empty(t, newLUNZeroes(ws, 65536), "WRITE SAME with UNMAP is a discard too")
	none := thin
	none.Provisioning = &scsi.Provisioning{}
	assert.Contains(t, newLUNZeroes(none, 65536), "takes no discard")
	g := thin
	g.BlockLimits = &scsi.BlockLimits{OptimalUnmapGranularity: 128}
	assert.Empty(t, newLUNZeroes(g, 65536), "64 KiB units tile 64 KiB regions")
	g.BlockLimits = &scsi.BlockLimits{OptimalUnmapGranularity: 8, UnmapAlignmentValid: true, UnmapAlignment: 1}
	assert.Contains(t, newLUNZeroes(g, 65536), "do not tile")
}
