package dm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// ioWriter writes 4 KiB blocks with O_DIRECT at random offsets of a device,
// reads each back and checks it, and keeps the expected content of the
// whole device.
type ioWriter struct {
	fd       int
	expected []byte
	block    int

	ops     atomic.Int64
	mu      sync.Mutex
	errs    []error
	maxLat  time.Duration
	maxWhen time.Time
}

func newIOWriter(t *testing.T, path string, initial []byte) *ioWriter {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return &ioWriter{fd: fd, expected: append([]byte(nil), initial...), block: 4096}
}

func (w *ioWriter) fail(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}

// run writes until stop is closed; wbuf and rbuf are page aligned.
func (w *ioWriter) run(stop <-chan struct{}, wbuf, rbuf []byte) {
	r := rand.New(rand.NewPCG(7, 11))
	blocks := len(w.expected) / w.block
	for seq := uint64(1); ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		off := r.IntN(blocks) * w.block
		for i := 0; i < w.block; i += 16 {
			binary.LittleEndian.PutUint64(wbuf[i:], seq)
			binary.LittleEndian.PutUint64(wbuf[i+8:], uint64(off+i))
		}
		start := time.Now()
		if n, err := unix.Pwrite(w.fd, wbuf[:w.block], int64(off)); err != nil || n != w.block {
			w.fail(fmt.Errorf("write %d at %d: n=%d err=%v", seq, off, n, err))
			continue
		}
		copy(w.expected[off:], wbuf[:w.block])
		if n, err := unix.Pread(w.fd, rbuf[:w.block], int64(off)); err != nil || n != w.block {
			w.fail(fmt.Errorf("read back %d at %d: n=%d err=%v", seq, off, n, err))
			continue
		}
		lat := time.Since(start)
		if string(rbuf[:w.block]) != string(wbuf[:w.block]) {
			w.fail(fmt.Errorf("read back %d at %d: data differs", seq, off))
		}
		w.mu.Lock()
		if lat > w.maxLat {
			w.maxLat, w.maxWhen = lat, start
		}
		w.mu.Unlock()
		w.ops.Add(1)
	}
}

// TestKernelLiveSwapUnderWriter hydrates a clone while a writer runs, then
// swaps clone→linear (over the destination) with Replace under the same
// writer: zero I/O errors, the data identical on the device and on the
// destination, the source never written. It logs the suspend times.
func TestKernelLiveSwapUnderWriter(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	const size = 32 << 20
	src, srcDev, srcData := loop(t, size, 9)
	dst, dstDev, _ := loop(t, size, 0)
	_, metaDev, _ := loop(t, 4<<20, 0)
	name, uuid := names("swap")
	length := Sectors(size / 512)
	mustCreate(t, c, name, uuid, Table{{Length: length, Target: Clone{
		Metadata: metaDev, Destination: dstDev, Source: srcDev, RegionSize: 128,
		HydrationThreshold: 64, HydrationBatchSize: 16, NoHydration: true,
	}}})
	p, err := c.DevicePath(name)
	require.NoError(t, err)

	w := newIOWriter(t, p, srcData)
	stop := make(chan struct{})
	done := make(chan struct{})
	wbuf, rbuf := alignedBuf(t, 4096), alignedBuf(t, 4096)
	go func() { defer close(done); w.run(stop, wbuf, rbuf) }()
	stopped := false
	stopWriter := func() {
		if !stopped {
			stopped = true
			close(stop)
			<-done
		}
	}
	t.Cleanup(stopWriter)

	// Let the writer hit unhydrated regions first (each write hydrates its
	// region), then hydrate the rest under the writer, waiting on events.
	time.Sleep(500 * time.Millisecond)
	require.Positive(t, w.ops.Load(), "the writer runs on the unhydrated clone")
	t.Logf("writer ops before background hydration: %d", w.ops.Load())
	info, err := c.Info(ctx, name)
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, c.EnableHydration(ctx, name))
	for {
		s, err := c.CloneStatus(ctx, name)
		require.NoError(t, err)
		if s.Hydrated() {
			break
		}
		info, err = c.WaitEvent(ctx, name, info.EventNr)
		require.NoError(t, err)
	}
	t.Logf("hydrated %d MiB under the writer in %s (%d writer ops so far)", size>>20, time.Since(start), w.ops.Load())

	opsBefore := w.ops.Load()
	time.Sleep(300 * time.Millisecond)
	require.Greater(t, w.ops.Load(), opsBefore, "the writer is running before the swap")

	lin := Table{{Length: length, Target: Linear{Device: dstDev}}}
	res, err := c.Replace(ctx, name, lin, ReplaceOptions{})
	require.NoError(t, err)
	t.Logf("MEASURED clone→linear swap under writer: I/O suspended %s (suspend+flush %s, resume+swap %s)",
		res.Suspended, res.SuspendCall, res.ResumeCall)
	assert.Equal(t, strings.TrimSpace(lin.String()), dmsetup(t, "table", name), "dmsetup shows the linear table")

	opsAt := w.ops.Load()
	time.Sleep(500 * time.Millisecond)
	require.Greater(t, w.ops.Load(), opsAt, "the writer keeps going after the swap")

	// More swaps (linear→linear, same table) under the writer for a spread.
	var susp []time.Duration
	susp = append(susp, res.Suspended)
	for i := 0; i < 5; i++ {
		r, err := c.Replace(ctx, name, lin, ReplaceOptions{})
		require.NoError(t, err)
		susp = append(susp, r.Suspended)
		time.Sleep(100 * time.Millisecond)
	}
	stopWriter()
	slices.Sort(susp)
	t.Logf("MEASURED suspend under writer over %d swaps: min %s median %s max %s; writer: %d ops (4 KiB write+read O_DIRECT), worst op latency %s",
		len(susp), susp[0], susp[len(susp)/2], susp[len(susp)-1], w.ops.Load(), w.maxLat)

	var idle []time.Duration
	for i := 0; i < 5; i++ {
		r, err := c.Replace(ctx, name, lin, ReplaceOptions{})
		require.NoError(t, err)
		idle = append(idle, r.Suspended)
	}
	slices.Sort(idle)
	t.Logf("MEASURED suspend without load over %d swaps: min %s median %s max %s", len(idle), idle[0], idle[len(idle)/2], idle[len(idle)-1])

	w.mu.Lock()
	errs := w.errs
	w.mu.Unlock()
	require.Empty(t, errs, "zero I/O errors during hydration and swaps")
	sameBytes(t, w.expected, readDirect(t, p, size), "device after the swap")
	sameBytes(t, w.expected, readDirect(t, dst, size), "destination (new LUN) after the swap")
	sameBytes(t, srcData, readDirect(t, src, size), "source (old LUN) never written")
}
