package scsi

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
)

func identityOf(t *testing.T, a goldenArray) Identity {
	t.Helper()
	id, err := ReadFrom(a.lu())
	require.NoError(t, err, a.name)
	return id
}

// The NAA 6 families: LIO reproduces each exactly.
func TestForLIONAA6Arrays(t *testing.T) {
	for _, c := range []struct {
		array     goldenArray
		companyID uint32
		serial    string
		wwid      string
	}{
		{netApp, 0x00a098, "038304871683f42767830526b", "naa.600a098038304871683f42767830526b"},
		{pure, 0x24a937, "0f4bd8b2a6b21d3c500011a35", "naa.624a9370f4bd8b2a6b21d3c500011a35"},
		{unity, 0x006016, "03e8045005f8ac25e0c6d5a26", "naa.600601603e8045005f8ac25e0c6d5a26"},
		{powerMax, 0x000097, "0000197600123533030303841", "naa.60000970000197600123533030303841"},
		{threePar, 0x0002ac, "0000000000000007a00021ba7", "naa.60002ac0000000000000007a00021ba7"},
		{ibmSVC, 0x005076, "81080810a500000000000002b", "naa.600507681080810a500000000000002b"},
		{ibmDS4700, 0x00a0b8, "000298c3e00002b7d4d3f1042", "naa.600a0b8000298c3e00002b7d4d3f1042"},
		{hitachi, 0x0060e8, "007c3b7000030c3b700000101", "naa.60060e8007c3b7000030c3b700000101"},
		{lioArray, 0x001405, "5f0e5b8c-7a3d-4e21-9c55-0123456789ab", "naa.60014055f0e5b8c7a3d4e219c5501234"},
	} {
		name := c.array.name
		id := identityOf(t, c.array)
		e, v := ForLIO(id, "vol1")
		assert.True(t, v.Exact, name)
		assert.Equal(t, FamilyNAA6, v.Family, name)
		assert.Empty(t, v.Reason, name)
		assert.Equal(t, c.wwid, v.OldWWID, name)
		assert.Equal(t, c.wwid, v.NewWWID, name)
		assert.Equal(t, c.companyID, e.WWN.CompanyID, name)
		assert.Equal(t, c.serial, e.WWN.UnitSerial, name)
		// What LIO builds from these settings is the old designator.
		d, _ := hostDesignator(id.Designators)
		assert.Equal(t, []byte(d.Value), LIONAA(e.WWN.CompanyID, e.WWN.UnitSerial), name)
		assert.Equal(t, id.Capacity.LogicalBlockSize, e.BlockSize, name)
		assert.Equal(t, id.Capacity.PhysicalBlockSize(), e.PhysicalBlockSize, name)
	}
}

func TestForLIONetAppNotes(t *testing.T) {
	e, v := ForLIO(identityOf(t, netApp), "vol1")
	assert.Equal(t, lio.WWN{UnitSerial: "038304871683f42767830526b", VendorID: "NETAPP", ProductID: "LUN C-Mode", Revision: "9141", CompanyID: 0x00a098}, e.WWN)
	assert.Equal(t, uint32(512), e.BlockSize)
	assert.Equal(t, uint32(4096), e.PhysicalBlockSize)
	assert.Empty(t, v.Handler)
	assert.Equal(t, []string{
		`VPD page 0x80 (unit serial) reads "038304871683f42767830526b" instead of "80Hqh?Bvx0Rk": LIO builds its NAA designator from the unit serial`,
		`designator t10.NETAPP  LUN C-Mode      80Hqh?Bvx0Rk (t10-vendor-id, logical unit) is not carried: LIO shows the logical unit only by its NAA 6, a T10 vendor ID of vendor, product and unit serial, and logical unit group 0`,
	}, v.Notes)
}

func TestForLIOKeepsASerialLIOCanUse(t *testing.T) {
	e, v := ForLIO(identityOf(t, lioArray), "vol1")
	assert.Equal(t, "5f0e5b8c-7a3d-4e21-9c55-0123456789ab", e.WWN.UnitSerial, "VPD page 0x80 stays the same")
	assert.Empty(t, v.Notes)
	assert.Equal(t, uint32(4096), e.BlockSize)
}

func TestForLIODeviceHandlers(t *testing.T) {
	for _, c := range []struct {
		array   goldenArray
		handler string
	}{{unity, "emc"}, {ibmDS4700, "rdac"}} {
		e, v := ForLIO(identityOf(t, c.array), "vol1")
		assert.True(t, v.Exact, c.array.name)
		assert.Equal(t, c.handler, v.Handler, c.array.name)
		assert.Empty(t, e.WWN.VendorID+e.WWN.ProductID+e.WWN.Revision, "LIO's own strings: %s", c.array.name)
		assert.Contains(t, v.Notes[len(v.Notes)-1], "would make a host bind the "+c.handler+" device handler", c.array.name)
	}
}

// NAA 5, EUI-64 and T10 vendor ID: LIO cannot show them; the host sees a
// new NAA 6 under LIO's company id.
func TestForLIONotReproducible(t *testing.T) {
	for _, c := range []struct {
		array  goldenArray
		family Family
		old    string
		reason string
	}{
		{xtremIO, FamilyNAA5, "naa.514f0c500d9a2003", "LIO emits only NAA 6 designators (16 bytes), never naa-5 (8 bytes)"},
		{nimble, FamilyEUI64, "eui.a1b2c3d4e5f6a7b86c9ce900abcdef01", "LIO emits no eui-64 designator"},
		{scstEUI, FamilyEUI64, "eui.001b21000000012a", "LIO emits no eui-64 designator"},
		{tgtT10, FamilyT10VendorID, "t10.IET     00010001", "LIO's T10 vendor ID designator is its vendor, product and unit serial, and comes with an NAA 6 designator, which hosts prefer"},
	} {
		name := c.array.name
		id := identityOf(t, c.array)
		e, v := ForLIO(id, "vol1")
		assert.False(t, v.Exact, name)
		assert.Equal(t, c.family, v.Family, name)
		assert.Equal(t, c.old, v.OldWWID, name)
		assert.Equal(t, "the host keys on "+c.old+" ("+string(c.family)+"): "+c.reason, v.Reason, name)
		assert.Zero(t, e.WWN.CompanyID, "LIO's company id: %s", name)
		assert.Equal(t, derivedSerial("vol1", c.old), e.WWN.UnitSerial, name)
		assert.Equal(t, LIOWWID(0x001405, e.WWN.UnitSerial), v.NewWWID, name)
		assert.Regexp(t, `^naa\.6001405[0-9a-f]{25}$`, v.NewWWID, name)

		// The new identity is the same on every call, and differs per volume.
		e2, v2 := ForLIO(id, "vol1")
		assert.Equal(t, e, e2, name)
		assert.Equal(t, v, v2, name)
		e3, _ := ForLIO(id, "vol2")
		assert.NotEqual(t, e.WWN.UnitSerial, e3.WWN.UnitSerial, name)
	}
}

func TestForLIONotReproducibleNotes(t *testing.T) {
	e, v := ForLIO(identityOf(t, scstEUI), "vol1")
	assert.Equal(t, lio.WWN{UnitSerial: e.WWN.UnitSerial, VendorID: "SCST_BIO", ProductID: "disk1"}, e.WWN)
	assert.Equal(t, []string{
		`INQUIRY revision is LIO's own: LIO cannot show " 350" (empty, white space at an end or not printable ASCII)`,
		`designator t10.SCST_BIOdisk1 3c1 (t10-vendor-id, logical unit) is not carried: LIO shows the logical unit only by its NAA 6, a T10 vendor ID of vendor, product and unit serial, and logical unit group 0`,
	}, v.Notes)

	_, v = ForLIO(Identity{Capacity: Capacity{LogicalBlockSize: 512}}, "vol1")
	assert.False(t, v.Exact)
	assert.Empty(t, v.OldWWID)
	assert.Equal(t, "the old LUN has no designator a host keys on", v.Reason)
}

func TestForLIOBlockGeometry(t *testing.T) {
	id := identityOf(t, netApp)
	id.Capacity = Capacity{LastLBA: 99, LogicalBlockSize: 520, LowestAlignedLBA: 7, ProtectionEnabled: true}
	e, v := ForLIO(id, "vol1")
	assert.Zero(t, e.BlockSize)
	assert.Contains(t, v.Notes, "logical block size 520: LIO supports 512, 1024, 2048 and 4096 only")
	assert.Contains(t, v.Notes, "lowest aligned LBA 7: LIO reports the backing device's alignment instead")
	assert.Contains(t, v.Notes, "T10 protection information is not carried")
}

func TestReproducible(t *testing.T) {
	naa6 := naa(0x60, 0x0a, 0x09, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	ok, why := Reproducible(naa6)
	assert.True(t, ok)
	assert.Empty(t, why)

	port := naa6
	port.Association = AssocTargetPort
	zero := naa(0x60, 0, 0, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	lunName := Designator{CodeSet: CodeSetUTF8, Type: TypeSCSIName, Value: HexBytes("naa.60014051\x00\x00\x00\x00")}
	md5 := Designator{CodeSet: CodeSetBinary, Type: TypeMD5, Value: make(HexBytes, 16)}
	for d, want := range map[*Designator]string{
		&port:    "it names the target port, not the logical unit",
		&zero:    "its company id is 0, which lio takes for LIO's default (00-14-05)",
		&lunName: "LIO's SCSI name string designators name its target port and device, not the logical unit",
		&md5:     "LIO emits no md5 designator",
	} {
		ok, why := Reproducible(*d)
		assert.False(t, ok, want)
		assert.Equal(t, want, why)
	}
	ok, why = Reproducible(naa(0x30, 1, 2, 3, 4, 5, 6, 7))
	assert.False(t, ok)
	assert.Equal(t, "LIO emits only NAA 6 designators (16 bytes), never naa-3 (8 bytes)", why)
}

func TestLIONAA(t *testing.T) {
	// LIO's default company id and a rtslib UUID: the dashes are skipped.
	assert.Equal(t, "naa.60014055f0e5b8c7a3d4e219c5501234", LIOWWID(0x001405, "5f0e5b8c-7a3d-4e21-9c55-0123456789ab"))
	// Upper case counts as hex; other letters are skipped; digits past
	// the 25th are not used.
	assert.Equal(t, "naa.600a098abcdef0123456789abcdef012", LIOWWID(0x00a098, "ABCDEF-xyz-0123456789abcdef0123456789"))
	// Fewer than 25 digits: the rest stays 0. The f and e of "lunferry"
	// are hex digits.
	assert.Equal(t, "naa.6001405fe12300000000000000000000", LIOWWID(0x001405, "lunferry-123"))
	assert.Equal(t, "naa.6ffffff0000000000000000000000000", LIOWWID(0xffffff, ""))
}

// Any 16-byte NAA 6 designator with a company id: the settings ForLIO
// derives make LIO emit exactly it.
func TestNAA6RoundTrip(t *testing.T) {
	for range 200 {
		v := make([]byte, 16)
		_, _ = rand.Read(v)
		v[0] = 0x60 | v[0]&0xf
		d := naa(v...)
		if cid, _ := d.CompanyID(); cid == 0 {
			continue
		}
		id := Identity{Designators: []Designator{d}, Capacity: Capacity{LogicalBlockSize: 512}}
		e, verdict := ForLIO(id, "x")
		require.True(t, verdict.Exact, hex.EncodeToString(v))
		require.Equal(t, v, LIONAA(e.WWN.CompanyID, e.WWN.UnitSerial))
	}
}

func TestDeviceHandler(t *testing.T) {
	assert.Equal(t, "emc", DeviceHandler("DGC", "RAID 5"))
	assert.Equal(t, "hp_sw", DeviceHandler("COMPAQ", "HSV110 (C)COMPAQ"))
	assert.Equal(t, "rdac", DeviceHandler("DELL", "MD32xx"))
	assert.Equal(t, "rdac", DeviceHandler("FUJITSU", "ETERNUS_AHB"))
	assert.Empty(t, DeviceHandler("IBM", "2145"))
	assert.Empty(t, DeviceHandler("NETAPP", "LUN C-Mode"))
}
