package scsi

// Golden identities imitating what arrays answer, built byte by byte from
// SPC-4's formats (7.8.6: designation descriptor header: byte 0 protocol
// identifier << 4 | code set, byte 1 PIV << 7 | association << 4 |
// designator type, byte 2 reserved, byte 3 designator length). The
// company ids are the vendors' IEEE OUIs; serials and volume numbers are
// made up in each vendor's shape.

// goldenArray is one array's logical unit.
type goldenArray struct {
	name     string
	inquiry  []byte
	serial   string // VPD page 0x80
	page83   []byte // VPD page 0x83 payload
	capacity []byte // READ CAPACITY(16)
}

// lu returns a fake logical unit answering with the array's pages; page
// 0x00 lists 0x00, 0x80 and 0x83.
func (a goldenArray) lu() *fakeLU {
	return &fakeLU{
		inquiry: a.inquiry,
		pages: map[byte][]byte{
			0x00: page(0x00, []byte{0x00, 0x80, 0x83}),
			0x80: page(0x80, []byte(a.serial)),
			0x83: page(0x83, a.page83),
		},
		capacity: a.capacity,
	}
}

// 512-byte blocks, 4096-byte physical blocks (exponent 3), 100 GiB.
var cap512e = capacity16(100<<21-1, 512, 0, 3, 0, 0)

// NetApp ONTAP: NAA 6 under OUI 00-A0-98 whose vendor part is a 0 nibble
// and the 12 ASCII characters of the LUN serial in hex.
var netApp = goldenArray{
	name:    "NetApp ONTAP",
	inquiry: inquiryData(0x10, "NETAPP", "LUN C-Mode", "9141"), // TPGS 1
	serial:  "80Hqh?Bvx0Rk",
	page83: []byte{
		0x02, 0x01, 0x00, 0x24, // ASCII, LU, T10 vendor ID, 36 bytes
		'N', 'E', 'T', 'A', 'P', 'P', ' ', ' ',
		'L', 'U', 'N', ' ', 'C', '-', 'M', 'o', 'd', 'e', ' ', ' ', ' ', ' ', ' ', ' ',
		'8', '0', 'H', 'q', 'h', '?', 'B', 'v', 'x', '0', 'R', 'k',
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x0a, 0x09, 0x80, // NAA 6, company id 00a098, nibble 0
		0x38, 0x30, 0x48, 0x71, 0x68, 0x3f, 0x42, 0x76, 0x78, 0x30, 0x52, 0x6b, // "80Hqh?Bvx0Rk"
		0x51, 0x94, 0x00, 0x04, // iSCSI, binary; PIV, target port, relative target port, 4 bytes
		0x00, 0x00, 0x00, 0x03,
		0x51, 0x95, 0x00, 0x04, // iSCSI, binary; PIV, target port, target port group, 4 bytes
		0x00, 0x00, 0x03, 0xe8,
	},
	capacity: cap512e,
}

// Pure Storage FlashArray: NAA 6 under OUI 24-A9-37, a 0 nibble, then
// the 24 hex digits of the volume serial.
var pure = goldenArray{
	name:    "Pure FlashArray",
	inquiry: inquiryData(0x10, "PURE", "FlashArray", "8888"),
	serial:  "F4BD8B2A6B21D3C500011A35",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x62, 0x4a, 0x93, 0x70, 0xf4, 0xbd, 0x8b, 0x2a, 0x6b, 0x21, 0xd3, 0xc5, 0x00, 0x01, 0x1a, 0x35,
		0x51, 0x95, 0x00, 0x04, // target port group 1
		0x00, 0x00, 0x00, 0x01,
	},
	capacity: capacity16(1<<31-1, 512, 0, 0, 0xc0, 0), // thin: LBPME, LBPRZ
}

// Dell EMC Unity (vendor DGC, as CLARiiON and VNX before it): NAA 6
// under OUI 00-60-16.
var unity = goldenArray{
	name:    "Dell EMC Unity",
	inquiry: inquiryData(0x00, "DGC", "VRAID", "5001"),
	serial:  "CKM00192100823",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x06, 0x01, 0x60, 0x3e, 0x80, 0x45, 0x00, 0x5f, 0x8a, 0xc2, 0x5e, 0x0c, 0x6d, 0x5a, 0x26,
	},
	capacity: cap512e,
}

// Dell EMC PowerMax (Symmetrix): NAA 6 under OUI 00-00-97, then the
// array's serial and the device number.
var powerMax = goldenArray{
	name:    "Dell EMC PowerMax",
	inquiry: inquiryData(0x00, "EMC", "SYMMETRIX", "5978"),
	serial:  "2300008A000",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x00, 0x09, 0x70, 0x00, 0x01, 0x97, 0x60, 0x01, 0x23, 0x53, 0x30, 0x30, 0x30, 0x38, 0x41,
	},
	capacity: cap512e,
}

// HPE 3PAR / Primera virtual volume: NAA 6 under OUI 00-02-AC.
var threePar = goldenArray{
	name:    "HPE 3PAR",
	inquiry: inquiryData(0x10, "3PARdata", "VV", "3315"),
	serial:  "4UW0002211",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x00, 0x2a, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7a, 0x00, 0x02, 0x1b, 0xa7,
	},
	capacity: cap512e,
}

// IBM FlashSystem / SVC (product 2145): NAA 6 under OUI 00-50-76.
var ibmSVC = goldenArray{
	name:    "IBM FlashSystem",
	inquiry: inquiryData(0x10, "IBM", "2145", "0000"),
	serial:  "0200a0210e8b2b00",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x05, 0x07, 0x68, 0x10, 0x80, 0x81, 0x0a, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2b,
	},
	capacity: cap512e,
}

// IBM DS4700 (product 1814, an LSI Engenio design): NAA 6 under LSI's
// OUI 00-A0-B8; its INQUIRY strings bind the rdac device handler.
var ibmDS4700 = goldenArray{
	name:    "IBM DS4700",
	inquiry: inquiryData(0x00, "IBM", "1814      FAStT", "1060"),
	serial:  "SV73301234",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x0a, 0x0b, 0x80, 0x00, 0x29, 0x8c, 0x3e, 0x00, 0x00, 0x2b, 0x7d, 0x4d, 0x3f, 0x10, 0x42,
	},
	capacity: cap512e,
}

// Hitachi VSP (OPEN-V): NAA 6 under OUI 00-60-E8 (the designator starts
// 60060e80).
var hitachi = goldenArray{
	name:    "Hitachi VSP",
	inquiry: inquiryData(0x00, "HITACHI", "OPEN-V", "8001"),
	serial:  "50403C3B70101",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x06, 0x0e, 0x80, 0x07, 0xc3, 0xb7, 0x00, 0x00, 0x30, 0xc3, 0xb7, 0x00, 0x00, 0x01, 0x01,
	},
	capacity: cap512e,
}

// A Linux LIO array (targetcli, and the NAS appliances built on LIO),
// as spc_emulate_evpd_83 lays out its page: NAA 6 under LIO's OUI
// 00-14-05 from a UUID unit serial, T10 vendor ID "vendor product:serial",
// relative target port, target port group, logical unit group, SCSI name
// strings of the target port and device.
var lioArray = goldenArray{
	name:    "Linux LIO",
	inquiry: inquiryData(0x30, "LIO-ORG", "disk01", "4.0"),
	serial:  "5f0e5b8c-7a3d-4e21-9c55-0123456789ab",
	page83: []byte{
		0x01, 0x03, 0x00, 0x10, // binary, LU, NAA, 16 bytes
		0x60, 0x01, 0x40, 0x55, 0xf0, 0xe5, 0xb8, 0xc7, 0xa3, 0xd4, 0xe2, 0x19, 0xc5, 0x50, 0x12, 0x34,
		0x02, 0x01, 0x00, 0x34, // ASCII, LU, T10 vendor ID, 52 bytes
		'L', 'I', 'O', '-', 'O', 'R', 'G', ' ', 'd', 'i', 's', 'k', '0', '1', ':',
		'5', 'f', '0', 'e', '5', 'b', '8', 'c', '-', '7', 'a', '3', 'd', '-', '4', 'e', '2', '1', '-',
		'9', 'c', '5', '5', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 0,
		0x51, 0x94, 0x00, 0x04, // iSCSI, binary; PIV, target port, relative target port 1
		0x00, 0x00, 0x00, 0x01,
		0x51, 0x95, 0x00, 0x04, // iSCSI, binary; PIV, target port, target port group 0
		0x00, 0x00, 0x00, 0x00,
		0x01, 0x06, 0x00, 0x04, // binary, LU, logical unit group 0
		0x00, 0x00, 0x00, 0x00,
		0x53, 0x98, 0x00, 0x14, // iSCSI, UTF-8; PIV, target port, SCSI name string, 20 bytes
		'i', 'q', 'n', '.', 'x', ':', 'a', ',', 't', ',', '0', 'x', '0', '0', '0', '1', 0, 0, 0, 0,
		0x53, 0xa8, 0x00, 0x08, // iSCSI, UTF-8; PIV, target device, SCSI name string, 8 bytes
		'i', 'q', 'n', '.', 'x', ':', 'a', 0,
	},
	capacity: capacity16(1<<21-1, 4096, 0, 0, 0, 0), // 4Kn
}

// Dell EMC XtremIO: NAA 5 (8 bytes) under OUI 14-F0-C5.
var xtremIO = goldenArray{
	name:    "Dell EMC XtremIO",
	inquiry: inquiryData(0x10, "XtremIO", "XtremApp", "40f0"),
	serial:  "0d9a2003",
	page83: []byte{
		0x01, 0x03, 0x00, 0x08, // binary, LU, NAA, 8 bytes
		0x51, 0x4f, 0x0c, 0x50, 0x0d, 0x9a, 0x20, 0x03, // NAA 5, company id 14f0c5, 36 vendor bits
	},
	capacity: cap512e,
}

// HPE Nimble: a 16-byte EUI-64 based designator (identifier extension,
// then OUI 6C-9C-E9 and the vendor part) and a T10 vendor ID.
var nimble = goldenArray{
	name:    "HPE Nimble",
	inquiry: inquiryData(0x10, "Nimble", "Server", "1.0"),
	serial:  "a1b2c3d4e5f6a7b86c9ce900abcdef01",
	page83: []byte{
		0x02, 0x01, 0x00, 0x28, // ASCII, LU, T10 vendor ID, 40 bytes
		'N', 'i', 'm', 'b', 'l', 'e', ' ', ' ',
		'a', '1', 'b', '2', 'c', '3', 'd', '4', 'e', '5', 'f', '6', 'a', '7', 'b', '8',
		'6', 'c', '9', 'c', 'e', '9', '0', '0', 'a', 'b', 'c', 'd', 'e', 'f', '0', '1',
		0x01, 0x02, 0x00, 0x10, // binary, LU, EUI-64, 16 bytes
		0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0xa7, 0xb8, // identifier extension
		0x6c, 0x9c, 0xe9, // IEEE company id
		0x00, 0xab, 0xcd, 0xef, 0x01, // vendor specific extension
	},
	capacity: cap512e,
}

// An SCST vdisk given an eui64_id: an 8-byte EUI-64 (OUI, 40 vendor bits)
// and SCST's T10 vendor ID.
var scstEUI = goldenArray{
	name:    "SCST vdisk",
	inquiry: inquiryData(0x00, "SCST_BIO", "disk1", " 350"),
	serial:  "3c1f2a9e",
	page83: []byte{
		0x02, 0x01, 0x00, 0x11, // ASCII, LU, T10 vendor ID, 17 bytes
		'S', 'C', 'S', 'T', '_', 'B', 'I', 'O', 'd', 'i', 's', 'k', '1', ' ', '3', 'c', '1',
		0x01, 0x02, 0x00, 0x08, // binary, LU, EUI-64, 8 bytes
		0x00, 0x1b, 0x21, 0x00, 0x00, 0x00, 0x01, 0x2a,
	},
	capacity: cap512e,
}

// Early tgt (stgt): a single T10 vendor ID designator, code set binary,
// vendor IET and the LU's scsi_id.
var tgtT10 = goldenArray{
	name:    "tgt (T10 vendor ID only)",
	inquiry: inquiryData(0x00, "IET", "VIRTUAL-DISK", "0001"),
	serial:  "beaf11",
	page83: []byte{
		0x01, 0x01, 0x00, 0x10, // binary, LU, T10 vendor ID, 16 bytes
		'I', 'E', 'T', ' ', ' ', ' ', ' ', ' ', '0', '0', '0', '1', '0', '0', '0', '1',
	},
	capacity: cap512e,
}
