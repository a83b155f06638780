package clone

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// readAt reads n bytes of dev at off after dropping its page cache: a
// discard passed down through the clone invalidates only the clone's.
func readAt(t *testing.T, dev string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0))
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	return b
}

// TestKernelDiscardSkipsRegions: a discard on a clone device with
// hydration off marks the whole regions it covers hydrated without a copy
// and passes the discard down (the destination reads zeroes there, not what
// it held); a part of a region counts for nothing; discarding again changes
// nothing; a device another opener holds exclusively is refused.
func TestKernelDiscardSkipsRegions(t *testing.T) {
	const region = 64 << 10
	k := newKernelClone(t, 8<<20, region/512)
	junk := bytes.Repeat([]byte{0xaa}, 10*region)
	writeDev(t, k.dst, 10*region, junk)

	exts := []Extent{{Offset: 10 * region, Length: 10 * region}, {Offset: 50 * region, Length: region}, {Offset: 70*region + region/2, Length: region}}
	require.NoError(t, Discard(k.path, exts))
	ctx := context.Background()
	st, err := k.client.CloneStatus(ctx, k.name)
	require.NoError(t, err)
	assert.Equal(t, uint64(11), st.HydratedRegions, "10 + 1 whole regions; the half ones count for nothing")
	assert.Equal(t, make([]byte, 10*region), readAt(t, k.dst, 10*region, 10*region), "passed down: the destination reads zeroes")
	assert.Equal(t, make([]byte, region), readAt(t, k.path, 50*region, region), "the clone serves the destination there")
	assert.Equal(t, k.srcData[70*region:72*region], readAt(t, k.path, 70*region, 2*region), "the source's data where nothing whole was discarded")

	// Zeroed reads the destination O_DIRECT: zeroes where discarded,
	// the junk of a region that was not.
	writeDev(t, k.dst, 30*region, junk[:region])
	at, ok, err := Zeroed(k.dst, exts[:2])
	require.NoError(t, err)
	assert.True(t, ok, "byte %d", at)
	at, ok, err = Zeroed(k.dst, []Extent{{Offset: 10 * region, Length: region}, {Offset: 30 * region, Length: region}})
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, uint64(30*region), at)

	require.NoError(t, Discard(k.path, exts))
	st, err = k.client.CloneStatus(ctx, k.name)
	require.NoError(t, err)
	assert.Equal(t, uint64(11), st.HydratedRegions)

	fd, err := unix.Open(k.path, unix.O_RDONLY|unix.O_EXCL, 0)
	require.NoError(t, err)
	err = Discard(k.path, exts)
	unix.Close(fd)
	require.ErrorIs(t, err, unix.EBUSY, "held exclusively (an era table, a LIO export): refused")
}
