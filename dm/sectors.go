package dm

import (
	"fmt"
	"strconv"
)

// SectorSize is the size in bytes of the unit device-mapper counts in.
const SectorSize = 512

// Sectors is a length or an offset in 512-byte units, the unit of every
// device-mapper table and status line whatever the devices' block size.
type Sectors uint64

// Bytes returns s in bytes.
func (s Sectors) Bytes() uint64 { return uint64(s) * SectorSize }

// String renders s as the decimal number a table line carries.
func (s Sectors) String() string { return strconv.FormatUint(uint64(s), 10) }

// SectorsFromBytes converts n bytes to sectors; it fails when n is not a
// multiple of SectorSize, since a table cannot map part of a sector.
func SectorsFromBytes(n uint64) (Sectors, error) {
	if n%SectorSize != 0 {
		return 0, fmt.Errorf("dm: %d bytes is not a whole number of %d-byte sectors", n, SectorSize)
	}
	return Sectors(n / SectorSize), nil
}

func isPowerOfTwo(v uint64) bool { return v != 0 && v&(v-1) == 0 }
