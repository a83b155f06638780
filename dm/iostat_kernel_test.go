package dm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKernelIOCounters: the counters of a dm device count the I/O
// submitted to it (reads and writes through its node), not its own
// device's below it.
func TestKernelIOCounters(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	_, dev, _ := loop(t, 1<<20, 1)
	name, uuid := names("io")
	mustCreate(t, c, name, uuid, Table{{Start: 0, Length: 2048, Target: Linear{Device: dev}}})
	before, err := c.IOCounters(ctx, name)
	require.NoError(t, err)
	path, err := c.DevicePath(name)
	require.NoError(t, err)
	for i := range 8 {
		require.NoError(t, writeDevice(path, int64(i)*4096, make([]byte, 4096)))
	}
	readDirect(t, path, 16*4096)
	after, err := c.IOCounters(ctx, name)
	require.NoError(t, err)
	got := after.Requests - before.Requests
	t.Logf("8 writes and a 64 KiB read: %d requests, %v busy", got, after.Busy-before.Busy)
	assert.GreaterOrEqual(t, got, uint64(9), "the writes and the read")
	assert.Less(t, got, uint64(100))

	_, err = c.IOCounters(ctx, name+"-none")
	assert.Error(t, err)
}
