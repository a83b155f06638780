package clone

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestKernelScanNamesBadRange: a clone whose source returns read errors on
// 24 KiB and on 512 bytes elsewhere (dm "error" segments) hydrates
// everything else and then stops progressing, never faulty; the committed
// bitmap lists the bad ranges' batches unhydrated, and Scan over them
// names exactly the bad bytes. The host's read there fails, and so does
// its write (dm-clone copies the region first; even a write of the whole
// region, which needs no copy, waits for the background copy of it
// retried in a loop, and fails with it); once the source reads again,
// hydration completes by itself.
func TestKernelScanNamesBadRange(t *testing.T) {
	vmtest.Require(t)
	const size, region = 8 << 20, RecommendedRegionSize
	bads := []Extent{{Offset: 3<<20 + 12<<10, Length: 24 << 10}, {Offset: 6<<20 + 512, Length: 512}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	src := vmtest.LoopDevice(t, size)
	srcName, srcDev := createDev(t, c, badTable(src, size, bads))
	dst, meta := vmtest.LoopDevice(t, size), vmtest.LoopDevice(t, 4<<20)
	name, dev := createDev(t, c, dm.Table{{Length: size / dm.SectorSize, Target: dm.Clone{
		Metadata: meta, Destination: dst, Source: srcDev, RegionSize: region}}})
	for _, m := range []string{dm.MsgHydrationThreshold(TunedThreshold), dm.MsgHydrationBatchSize(TunedBatchSize)} {
		require.NoError(t, c.Message(ctx, name, 0, m))
	}

	st := waitStalled(t, ctx, c, name)
	require.False(t, st.Faulty(), "a source read error does not fail the clone")
	require.Less(t, st.HydratedRegions, st.TotalRegions)
	t.Logf("stalled at %d of %d regions", st.HydratedRegions, st.TotalRegions)
	_, err = c.CloneStatusCommitted(ctx, name)
	require.NoError(t, err)
	m, err := OpenDirect(meta, 10*time.Second)
	require.NoError(t, err)
	defer m.Close()
	ext, err := UnhydratedExtents(m)
	require.NoError(t, err)
	t.Logf("unhydrated: %v", ext)
	require.Len(t, ext, 2)
	for i, bad := range bads {
		require.True(t, ext[i].Offset <= bad.Offset && bad.End() <= ext[i].End() && ext[i].Length <= TunedCopyBytes, "%v", ext)
	}

	r, err := OpenDirect(srcDev, 10*time.Second)
	require.NoError(t, err)
	defer r.Close()
	res := Scan(ctx, r, ext, ScanOptions{})
	require.True(t, res.Complete(), res.Stopped)
	require.Equal(t, bads, res.Unreadable)

	hostRead, hostWrite := hostIO(t, dev, bads[0].Offset+4096, 4096)
	t.Logf("host read in the bad range: %v; host 4 KiB write there: %v", hostRead, hostWrite)
	require.ErrorIs(t, hostRead, unix.EIO)
	require.ErrorIs(t, hostWrite, unix.EIO)

	_, err = c.Replace(ctx, srcName, dm.Table{{Length: size / dm.SectorSize, Target: dm.Linear{Device: src}}}, dm.ReplaceOptions{})
	require.NoError(t, err)
	for st.HydratedRegions < st.TotalRegions {
		require.NoError(t, ctx.Err(), "hydration did not complete after the source was fixed")
		time.Sleep(100 * time.Millisecond)
		st, err = c.CloneStatus(ctx, name)
		require.NoError(t, err)
	}
}

// badTable maps dev whole but for error segments over bads (sorted).
func badTable(dev string, size uint64, bads []Extent) dm.Table {
	var t dm.Table
	var at dm.Sectors
	linear := func(end dm.Sectors) {
		if end > at {
			t = append(t, dm.TableLine{Start: at, Length: end - at, Target: dm.Linear{Device: dev, Offset: at}})
		}
	}
	for _, b := range bads {
		a, l := dm.Sectors(b.Offset/dm.SectorSize), dm.Sectors(b.Length/dm.SectorSize)
		linear(a)
		t = append(t, dm.TableLine{Start: a, Length: l, Target: dm.Error{}})
		at = a + l
	}
	linear(dm.Sectors(size / dm.SectorSize))
	return t
}

// createDev creates a dm device removed at cleanup and returns its name
// and node.
func createDev(t *testing.T, c *dm.Client, table dm.Table) (string, string) {
	t.Helper()
	name := vmtest.RandomName("lunferry-scan")
	_, err := c.Create(context.Background(), name, dm.UUIDPrefix+strings.TrimPrefix(name, dm.NamePrefix), table)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := c.Remove(context.Background(), name, dm.RemoveOptions{Retries: 20}); err != nil && !errors.Is(err, dm.ErrNotFound) {
			t.Errorf("cleanup: remove %s: %v", name, err)
		}
	})
	dev, err := c.DevicePath(name)
	require.NoError(t, err)
	return name, dev
}

// waitStalled waits until the clone's hydrated count stays put for 3 s.
func waitStalled(t *testing.T, ctx context.Context, c *dm.Client, name string) dm.CloneStatus {
	t.Helper()
	var last dm.CloneStatus
	since := time.Now()
	for time.Since(since) < 3*time.Second {
		require.NoError(t, ctx.Err(), "hydration never stopped progressing")
		st, err := c.CloneStatus(ctx, name)
		require.NoError(t, err)
		if st.HydratedRegions != last.HydratedRegions {
			last, since = st, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// hostIO reads, then writes, n bytes at off of dev with O_DIRECT, as a
// host would through the export.
func hostIO(t *testing.T, dev string, off, n uint64) (readErr, writeErr error) {
	t.Helper()
	buf := alignedBuffer(int(n))
	r, err := OpenDirect(dev, 10*time.Second)
	require.NoError(t, err)
	_, readErr = r.ReadAt(buf, int64(off))
	r.Close()
	fd, err := unix.Open(dev, unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fd), dev)
	defer f.Close()
	_, writeErr = f.WriteAt(buf, int64(off))
	return readErr, writeErr
}
