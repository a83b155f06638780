package scsi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func naa(v ...byte) Designator { return Designator{CodeSet: CodeSetBinary, Type: TypeNAA, Value: v} }
func eui(v ...byte) Designator { return Designator{CodeSet: CodeSetBinary, Type: TypeEUI64, Value: v} }
func t10(s string) Designator {
	return Designator{CodeSet: CodeSetASCII, Type: TypeT10VendorID, Value: HexBytes(s)}
}

func TestHostWWIDEveryDesignator(t *testing.T) {
	ds, err := parseDeviceID(everyDesignator)
	require.NoError(t, err)
	// The SCSI name strings name ports, so the NAA 6 wins.
	assert.Equal(t, "naa.6001405123456789abcdef0123456789", HostWWID(ds))
	// Without it, the 16-byte EUI-64 is next.
	assert.Equal(t, "eui.1122334455667788001b210a0b0c0d0e", HostWWID(append(ds[:7:7], ds[8:]...)))
}

func TestHostWWIDPreferences(t *testing.T) {
	naa6 := naa(0x60, 0x0a, 0x09, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	naa5 := naa(0x50, 0x01, 0xb2, 0x10, 0, 0, 0, 0x2a)
	naa2 := naa(0x20, 0x00, 0x00, 0x1b, 0x21, 0x12, 0x34, 0x56)
	naa3 := naa(0x30, 1, 2, 3, 4, 5, 6, 7)
	eui8 := eui(0, 0x1b, 0x21, 1, 2, 3, 4, 5)
	eui12 := eui(0, 0x1b, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	lunName := Designator{CodeSet: CodeSetUTF8, Type: TypeSCSIName, Value: HexBytes("naa.6001405ab\x00\x00\x00")}
	portNAA := naa6
	portNAA.Association = AssocTargetPort
	for name, c := range map[string]struct {
		ds   []Designator
		want string
	}{
		"SCSI name string of the LU beats NAA 6":             {[]Designator{naa6, lunName}, "naa.6001405ab"},
		"NAA 6 beats a later EUI-64":                         {[]Designator{naa6, eui12, eui8}, "naa.600a09800102030405060708090a0b0c"},
		"12-byte EUI-64 beats NAA 5":                         {[]Designator{naa5, eui12}, "eui.001b21010203040506070809"},
		"NAA 5 beats 8-byte EUI-64":                          {[]Designator{eui8, naa5}, "naa.5001b2100000002a"},
		"8-byte EUI-64 beats T10 vendor ID":                  {[]Designator{t10("ACME    x"), eui8}, "eui.001b210102030405"},
		"NAA 2 is ignored by the kernel":                     {[]Designator{naa2}, ""},
		"NAA 3 and T10: the later wins":                      {[]Designator{naa3, t10("ACME    vol1")}, "t10.ACME    vol1"},
		"T10 then NAA 3: the later wins":                     {[]Designator{t10("ACME    vol1"), naa3}, "naa.3001020304050607"},
		"a shorter T10 does not replace":                     {[]Designator{t10("ACME    vol1"), t10("ACME")}, "t10.ACME    vol1"},
		"equal NAA 6: the later wins":                        {[]Designator{naa6, naa(0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)}, "naa.60000000000000000000000000000001"},
		"a port's NAA does not count":                        {[]Designator{portNAA}, ""},
		"a bad-length NAA 6 raises the bar but keeps the id": {[]Designator{naa6, naa(0x60, 1, 2, 3), eui12}, "naa.600a09800102030405060708090a0b0c"},
		"nothing":                                {nil, ""},
		"T10 with NUL and control bytes escaped": {[]Designator{t10("LIO-ORG \x00\x1b\x7f")}, `t10.LIO-ORG \0\e\177`},
	} {
		assert.Equal(t, c.want, HostWWID(c.ds), name)
	}
}
