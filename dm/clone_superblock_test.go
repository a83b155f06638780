package dm

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// superblock lays out block 0 as dm-clone-metadata.c writes it.
func superblock(magic uint64, blocknr uint64, region, target uint64) []byte {
	b := make([]byte, CloneSuperblockSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0xdeadbeef) // csum: the kernel's to check
	le.PutUint64(b[8:], blocknr)
	copy(b[16:32], "0123456789abcdef")
	le.PutUint64(b[32:], magic)
	le.PutUint32(b[40:], 1)
	b[44] = 0x5a // space map root
	le.PutUint64(b[172:], region)
	le.PutUint64(b[180:], target)
	le.PutUint64(b[188:], 7)
	return b
}

func TestParseCloneSuperblock(t *testing.T) {
	sb, err := ParseCloneSuperblock(superblock(0x8af27f64, 0, 128, 2097152))
	require.NoError(t, err)
	require.Equal(t, CloneSuperblock{Version: 1, RegionSize: 128, TargetSize: 2097152}, sb)

	_, err = ParseCloneSuperblock(make([]byte, CloneSuperblockSize))
	require.ErrorIs(t, err, ErrNoCloneSuperblock)
	_, err = ParseCloneSuperblock(superblock(0x12345678, 0, 128, 8))
	require.ErrorIs(t, err, ErrBadCloneSuperblock)
	require.ErrorContains(t, err, "magic")
	_, err = ParseCloneSuperblock(superblock(0x8af27f64, 3, 128, 8))
	require.ErrorIs(t, err, ErrBadCloneSuperblock)
	_, err = ParseCloneSuperblock(make([]byte, 100))
	require.ErrorIs(t, err, ErrBadCloneSuperblock)
}
