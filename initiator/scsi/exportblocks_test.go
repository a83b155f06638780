package scsi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// lu returns an identity with the given block sizes (physical block
// exponent from physical/logical) and thin provisioning pages.
func lu(logical, physical uint32, thin bool, prov *Provisioning) Identity {
	exp := uint8(0)
	for logical<<exp < physical {
		exp++
	}
	return Identity{Capacity: Capacity{LastLBA: 1<<20 - 1, LogicalBlockSize: logical, PhysicalBlockExponent: exp, LBPME: thin, LBPRZ: thin},
		Provisioning: prov}
}

var unmapOnly = &Provisioning{LBPU: true, LBPRZ: 1, Type: 2}

func TestOverNewLUNThinCarried(t *testing.T) {
	old, new := lu(512, 512, true, unmapOnly), lu(512, 512, true, &Provisioning{LBPU: true, LBPWS: true})
	e, v := Export{BlockSize: 512}, Verdict{}
	e.OverNewLUN(old, new, &v)
	assert.True(t, e.EmulateTPU)
	assert.False(t, e.EmulateTPWS, "the old LUN took no WRITE SAME with UNMAP")
	assert.Equal(t, []string{
		"unmapped blocks are not reported to read as zeroes (LBPRZ): a region dm-clone skips on UNMAP keeps what the new LUN held, so hosts zero blocks by writing zeroes",
		"LIO shows UNMAP on and WRITE SAME with UNMAP off, as the old LUN",
	}, v.Notes)

	// Without page 0xB2 a thin LU takes UNMAP.
	e, v = Export{BlockSize: 512}, Verdict{}
	e.OverNewLUN(lu(512, 512, true, nil), lu(512, 512, true, nil), &v)
	assert.True(t, e.EmulateTPU)
	assert.False(t, e.EmulateTPWS)

	e, v = Export{BlockSize: 512}, Verdict{}
	e.OverNewLUN(lu(512, 512, true, &Provisioning{LBPU: true, LBPWS: true, LBPWS10: true}), new, &v)
	assert.True(t, e.EmulateTPU && e.EmulateTPWS)
}

func TestOverNewLUNThinNotCarried(t *testing.T) {
	for _, c := range []struct {
		name     string
		old, new Identity
		note     string
	}{
		{"old fully provisioned", lu(512, 512, false, nil), lu(512, 512, true, unmapOnly), ""},
		{"new fully provisioned", lu(512, 512, true, unmapOnly), lu(512, 512, false, nil), "the old LUN is thin provisioned (UNMAP) but the new LUN reports no logical block provisioning"},
		{"new thin without unmap", lu(512, 512, true, unmapOnly), lu(512, 512, true, &Provisioning{Type: 2}), "the new LUN reports no logical block provisioning"},
		{"old thin without unmap", lu(512, 512, true, &Provisioning{Type: 2}), lu(512, 512, true, unmapOnly), "without UNMAP or WRITE SAME with UNMAP"},
	} {
		e, v := Export{BlockSize: 512}, Verdict{}
		e.OverNewLUN(c.old, c.new, &v)
		assert.False(t, e.EmulateTPU || e.EmulateTPWS, c.name)
		if c.note == "" {
			assert.Empty(t, v.Notes, c.name)
		} else if assert.Len(t, v.Notes, 1, c.name) {
			assert.Contains(t, v.Notes[0], c.note, c.name)
		}
	}
}

func TestOverNewLUNPhysicalBlockSize(t *testing.T) {
	for _, c := range []struct {
		name     string
		old, new Identity
		notes    []string
	}{
		{"same geometry", lu(512, 4096, false, nil), lu(512, 4096, false, nil), nil},
		{"4Kn on 512n", lu(4096, 4096, false, nil), lu(512, 512, false, nil), nil},
		{"512e on 512n", lu(512, 4096, false, nil), lu(512, 512, false, nil), []string{
			"physical block size 512 after finalize (the new LUN's 512/512 ratio of physical to logical block size over the export's 512-byte logical blocks), not the old LUN's 4096: hosts align new partitions and filesystems to it, existing ones keep working",
		}},
		{"512n on 512e", lu(512, 512, false, nil), lu(512, 4096, false, nil), []string{
			"physical block size 4096 while the clone serves the host (the larger of the old LUN's 512 and the new LUN's 4096, as device-mapper stacks them), not the old LUN's 512: hosts align new partitions and filesystems to it, existing ones keep working",
			"physical block size 4096 after finalize (the new LUN's 4096/512 ratio of physical to logical block size over the export's 512-byte logical blocks), not the old LUN's 512: hosts align new partitions and filesystems to it, existing ones keep working",
		}},
		{"4Kn on 512e", lu(4096, 4096, false, nil), lu(512, 4096, false, nil), []string{
			"physical block size 32768 after finalize (the new LUN's 4096/512 ratio of physical to logical block size over the export's 4096-byte logical blocks), not the old LUN's 4096: hosts align new partitions and filesystems to it, existing ones keep working; 4096/32768 is none of the sector formats 512n, 512e and 4Kn",
		}},
	} {
		e, v := Export{BlockSize: c.old.Capacity.LogicalBlockSize}, Verdict{}
		e.OverNewLUN(c.old, c.new, &v)
		assert.Equal(t, c.notes, v.Notes, c.name)
	}
}

func TestOverNewLUNBlockLimits(t *testing.T) {
	old := lu(512, 4096, false, nil)
	old.BlockLimits = &BlockLimits{WSNZ: true, MaxTransferLength: 65535, OptimalTransferLength: 128, OptimalGranularity: 8, MaxUnmapDescriptors: 16}
	e, v := Export{BlockSize: 512}, Verdict{}
	e.OverNewLUN(old, old, &v)
	assert.Equal(t, []string{"VPD page 0xB0 (block limits) is LIO's, from the proxy's device, not the old LUN's (maximum transfer length 65535 blocks, optimal transfer length 128 blocks, optimal transfer length granularity 8 blocks, maximum unmap block descriptors 16): hosts size their requests by it"}, v.Notes)
	old.BlockLimits = &BlockLimits{WSNZ: true}
	v = Verdict{}
	e.OverNewLUN(old, old, &v)
	assert.Empty(t, v.Notes, "nothing but WSNZ, which LIO sets too")
}
