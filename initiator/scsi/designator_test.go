package scsi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// everyDesignator is a VPD page 0x83 payload with one designator of each
// kind SPC-4 defines, plus LIO's port designators as LIO builds them
// (target_core_spc.c spc_emulate_evpd_83).
var everyDesignator = []byte{
	0x02, 0x01, 0x00, 0x0c, // ASCII, LU, T10 vendor ID, 12 bytes
	'A', 'C', 'M', 'E', ' ', ' ', ' ', ' ', 'v', 'o', 'l', '1',
	0x01, 0x02, 0x00, 0x08, // binary, LU, EUI-64, 8 bytes
	0x00, 0x1b, 0x21, 0x01, 0x02, 0x03, 0x04, 0x05,
	0x01, 0x02, 0x00, 0x0c, // binary, LU, EUI-64, 12 bytes: EUI-64 + 4-byte directory id
	0x00, 0x1b, 0x21, 0x01, 0x02, 0x03, 0x04, 0x05, 0xde, 0xad, 0xbe, 0xef,
	0x01, 0x02, 0x00, 0x10, // binary, LU, EUI-64, 16 bytes: extension, OUI, vendor
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x00, 0x1b, 0x21, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
	0x01, 0x03, 0x00, 0x08, // binary, LU, NAA, 8 bytes: NAA 2 (IEEE Extended)
	0x20, 0x00, 0x00, 0x1b, 0x21, 0x12, 0x34, 0x56,
	0x01, 0x03, 0x00, 0x08, // binary, LU, NAA, 8 bytes: NAA 3 (locally assigned)
	0x30, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x01, 0x03, 0x00, 0x08, // binary, LU, NAA, 8 bytes: NAA 5
	0x50, 0x01, 0xb2, 0x10, 0x00, 0x00, 0x00, 0x2a,
	0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes: NAA 6
	0x60, 0x01, 0x40, 0x51, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
	0x51, 0x94, 0x00, 0x04, // iSCSI, binary; PIV, target port, relative target port
	0x00, 0x00, 0x00, 0x01,
	0x51, 0x95, 0x00, 0x04, // iSCSI, binary; PIV, target port, target port group
	0x00, 0x00, 0x00, 0x00,
	0x01, 0x06, 0x00, 0x04, // binary, LU, logical unit group
	0x00, 0x00, 0x00, 0x07,
	0x01, 0x07, 0x00, 0x10, // binary, LU, MD5 logical unit identifier
	0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e,
	0x53, 0x98, 0x00, 0x14, // iSCSI, UTF-8; PIV, target port, SCSI name string, 20 bytes
	'i', 'q', 'n', '.', '2', '0', '2', '6', '-', '1', '1', '.', 'x', ',', 't', ',', '0', 'x', '1', 0,
	0x53, 0xa8, 0x00, 0x10, // iSCSI, UTF-8; PIV, target device, SCSI name string, 16 bytes
	'i', 'q', 'n', '.', '2', '0', '2', '6', '-', '1', '1', '.', 'x', 0, 0, 0,
}

func TestParseDeviceIDEveryDesignator(t *testing.T) {
	ds, err := parseDeviceID(everyDesignator)
	require.NoError(t, err)
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	assert.Equal(t, []string{
		"t10.ACME    vol1 (t10-vendor-id, logical unit)",
		"eui.001b210102030405 (eui-64, logical unit)",
		"eui.001b210102030405deadbeef (eui-64, logical unit)",
		"eui.1122334455667788001b210a0b0c0d0e (eui-64, logical unit)",
		"naa.2000001b21123456 (naa-2, logical unit)",
		"naa.3001020304050607 (naa-3, logical unit)",
		"naa.5001b2100000002a (naa-5, logical unit)",
		"naa.6001405123456789abcdef0123456789 (naa-6, logical unit)",
		"relative-target-port 1 (relative-target-port, target port)",
		"target-port-group 0 (target-port-group, target port)",
		"logical-unit-group 7 (logical-unit-group, logical unit)",
		"md5.d41d8cd98f00b204e9800998ecf8427e (md5, logical unit)",
		"iqn.2026-11.x,t,0x1 (scsi-name-string, target port)",
		"iqn.2026-11.x (scsi-name-string, target device)",
	}, got)

	assert.Equal(t, Designator{Protocol: 5, CodeSet: CodeSetUTF8, PIV: true, Association: AssocTargetPort, Type: TypeSCSIName,
		Value: HexBytes("iqn.2026-11.x,t,0x1\x00")}, ds[12])
	for i, want := range map[int]uint32{1: 0x001b21, 2: 0x001b21, 3: 0x001b21, 4: 0x001b21, 6: 0x001b21, 7: 0x001405} {
		cid, ok := ds[i].CompanyID()
		assert.True(t, ok, ds[i].String())
		assert.Equal(t, want, cid, ds[i].String())
	}
	_, ok := ds[5].CompanyID()
	assert.False(t, ok, "NAA 3 has no company id")
	_, ok = ds[0].CompanyID()
	assert.False(t, ok, "T10 vendor ID has no company id")
}

func TestParseDeviceIDMalformed(t *testing.T) {
	_, err := parseDeviceID([]byte{0x01, 0x03, 0x00, 0x10, 0x60, 0x01})
	assert.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "runs 14 bytes past the page")
	_, err = parseDeviceID([]byte{0x01, 0x03, 0x00, 0x00, 0x01})
	assert.ErrorIs(t, err, ErrMalformed)
	ds, err := parseDeviceID(nil)
	require.NoError(t, err)
	assert.Empty(t, ds)
}

func TestDesignatorJSONRoundTrip(t *testing.T) {
	ds, err := parseDeviceID(netApp.page83)
	require.NoError(t, err)
	b, err := json.Marshal(ds[1])
	require.NoError(t, err)
	assert.JSONEq(t, `{"codeSet":1,"association":0,"type":3,"value":"600a098038304871683f42767830526b"}`, string(b))
	var back Designator
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, ds[1], back)
	assert.Error(t, json.Unmarshal([]byte(`{"value":"xyz"}`), &back))
}
