package plan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/internal/crashpoint"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// hostData is the host's disk as it must read: bytes, but for the 4 KiB
// blocks whose last write failed, which may hold any of the data of the
// writes that failed since the block's last good one (a write that fails
// may or may not have reached a disk).
type hostData struct {
	bytes  []byte
	unsure map[int64][][]byte
}

func newHostData(b []byte) *hostData { return &hostData{bytes: b, unsure: map[int64][][]byte{}} }

// check compares got, a whole device read, with d: a mismatch fails the
// test, with its count and first offset.
func (d *hostData) check(t *testing.T, what string, got []byte) {
	t.Helper()
	require.Len(t, got, len(d.bytes), what)
	bad, first := 0, int64(-1)
	for off := int64(0); off < int64(len(got)); off += 4096 {
		g := got[off : off+4096]
		if bytes.Equal(g, d.bytes[off:off+4096]) {
			continue
		}
		ok := false
		for _, u := range d.unsure[off] {
			ok = ok || bytes.Equal(g, u)
		}
		if !ok {
			bad++
			if first < 0 {
				first = off
			}
		}
	}
	require.Zero(t, bad, "%s: %d blocks of 4 KiB differ from what the host wrote, the first at byte %d (%d blocks the host's failed writes left unsure)", what, bad, first, len(d.unsure))
}

// hostWriter writes 4 KiB blocks of random data at random offsets of the
// host's disk (O_DIRECT|O_DSYNC, one at a time) into data, until stopped;
// it counts writes and errors and keeps the longest write.
type hostWriter struct {
	mu             sync.Mutex
	data           *hostData
	writes, errors int
	longest        time.Duration
	firstErr       error
	stop           chan struct{}
	done           chan struct{}
}

func startHostWriter(t *testing.T, disk string, data *hostData) *hostWriter {
	w := &hostWriter{data: data, stop: make(chan struct{}), done: make(chan struct{})}
	model := data.bytes
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	require.NoError(t, err)
	f, err := os.OpenFile(disk, os.O_WRONLY|unix.O_DIRECT|unix.O_DSYNC, 0)
	require.NoError(t, err)
	go func() {
		defer close(w.done)
		defer f.Close()
		defer unix.Munmap(buf)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			off := int64(rand.IntN(len(model)/4096)) * 4096
			for i := range buf {
				buf[i] = byte(rand.Uint32())
			}
			start := time.Now()
			_, err := f.WriteAt(buf, off)
			took := time.Since(start)
			w.mu.Lock()
			w.longest = max(w.longest, took)
			if err != nil {
				w.errors++
				if w.firstErr == nil {
					w.firstErr = err
				}
				data.unsure[off] = append(data.unsure[off], bytes.Clone(buf))
			} else {
				w.writes++
				copy(model[off:], buf)
				delete(data.unsure, off)
			}
			w.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *hostWriter) finish() { close(w.stop); <-w.done }

// TestKernelRollback: the host writes after cutover and keeps writing
// through the rollback, from mid-hydration and after finalize (the old LUN
// attached again); afterwards the device below the era runs linear over
// the old LUN, and the old LUN read alone (its backing file on the "old
// array", and its disk on the proxy) holds exactly what the host wrote,
// byte for byte; the host saw no write error, and the time its I/O was
// held is logged.
//
// In "load fails", loading linear over the old LUN fails once in the
// final round: the device is resumed with its clone (the old LUN
// read-only again) and the rerun finishes. In "killed", lunferry is
// SIGKILLed in its final round, the device suspended (the host's I/O
// waits): the rerun resumes the clone first, then finishes.
func TestKernelRollback(t *testing.T) {
	t.Run("hydrating", func(t *testing.T) { kernelRollback(t, rollbackCase{}) })
	t.Run("finalized", func(t *testing.T) { kernelRollback(t, rollbackCase{finalized: true}) })
	t.Run("load fails", func(t *testing.T) { kernelRollback(t, rollbackCase{fault: loadFails}) })
	t.Run("killed", func(t *testing.T) { kernelRollback(t, rollbackCase{fault: killed}) })
}

// TestKernelRollbackPowerCut: the proxy loses power during a rollback
// from mid-hydration, lunferry (its crashpoints build) waiting at a crash
// point: between the first round and the final one; in the final round
// with linear over the old LUN loaded but not recorded (before the swap);
// and with the swap recorded but the device not yet resumed. The power
// cut takes every kernel object (the host's held writes fail, its session
// ends); the state directory stays. Restore rebuilds what the record
// says (the clone before the swap, linear over the old LUN after it) and
// status says so without drift; the host logs in again and reads what it
// wrote; the rerun of rollback finishes, and the old LUN read alone holds
// every write of the host (a write that failed may or may not be there).
func TestKernelRollbackPowerCut(t *testing.T) {
	t.Run("between rounds", func(t *testing.T) { kernelRollback(t, rollbackCase{fault: powerCut, at: "rollback:copied"}) })
	t.Run("before the swap", func(t *testing.T) { kernelRollback(t, rollbackCase{fault: powerCut, at: "rollback:loaded"}) })
	t.Run("swapped before the resume", func(t *testing.T) { kernelRollback(t, rollbackCase{fault: powerCut, at: "rollback:swapped"}) })
}

// TestKernelRollbackOldLUNs: rollback onto old LUNs as real arrays have
// them, with the host writing, checked as TestKernelRollback: one with
// 4096-byte logical blocks (from mid-hydration: rounds from the era
// device, the final round from the new LUN, 512-byte blocks), one whose
// array wants CHAP on the proxy's session (after finalize: the old LUN
// is attached again, logging in with CHAP).
func TestKernelRollbackOldLUNs(t *testing.T) {
	t.Run("4k blocks", func(t *testing.T) { kernelRollback(t, rollbackCase{lab: labOptions{oldBlockSize: 4096}}) })
	t.Run("chap after finalize", func(t *testing.T) {
		kernelRollback(t, rollbackCase{finalized: true, lab: labOptions{oldCHAP: true}})
	})
}

// rollbackCase is one lab rollback.
type rollbackCase struct {
	// finalized: the rollback starts after finalize, else mid-hydration.
	finalized bool
	// fault is what goes wrong in the first attempt; at is powerCut's
	// crash point.
	fault rollbackFault
	at    string
	lab   labOptions
}

// rollbackFault is what goes wrong in a lab rollback's first attempt.
type rollbackFault int

const (
	noFault rollbackFault = iota
	loadFails
	killed
	powerCut
)

// rollbackHelperEnv makes the test binary a lunferry that runs one
// rollback and hangs in its final copy (TestHelperRollback).
const rollbackHelperEnv = "LUNFERRY_PLAN_ROLLBACK_HELPER_STATE"

// hangingCopy hangs in the final round's copy (from a disk, not the era
// device), once it has said so in the file marker.
type hangingCopy struct {
	plan.OldWriter
	marker string
}

func (h hangingCopy) CopyBack(ctx context.Context, src, old string, extents []clone.Extent, rate clone.Rate) (uint64, error) {
	if !strings.HasPrefix(src, "/dev/dm-") {
		_ = os.WriteFile(h.marker, []byte(src), 0o600)
		select {}
	}
	return h.OldWriter.CopyBack(ctx, src, old, extents, rate)
}

func TestHelperRollback(t *testing.T) {
	dir := os.Getenv(rollbackHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestKernelRollback/killed")
	}
	ports := kernel.Ports(kernel.Options{})
	ports.OldWriter = hangingCopy{OldWriter: ports.OldWriter, marker: filepath.Join(dir, "final-round")}
	p, err := plan.New(plan.Options{StateDir: dir, Ports: ports, PollInterval: 100 * time.Millisecond})
	if err == nil {
		_, err = p.Rollback(context.Background(), os.Getenv("LUNFERRY_PLAN_HELPER_VOLUME"), plan.RollbackOptions{})
	}
	fmt.Fprintln(os.Stderr, "rollback returned:", err)
	os.Exit(1)
}

// killInFinalRound runs a rollback in a helper process and SIGKILLs it in
// its final copy, the device below the era suspended.
func (l *lab) killInFinalRound() {
	t := l.t
	state := filepath.Join(l.dir, "state")
	marker := filepath.Join(state, "final-round")
	killWhen(t, helperProcess("TestHelperRollback", rollbackHelperEnv+"="+state, "LUNFERRY_PLAN_HELPER_VOLUME="+l.spec.Name),
		"the rollback's final round", 2*time.Minute, fileExists(marker))
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	info, err := c.Info(context.Background(), plan.DMName(l.spec.Name))
	require.NoError(t, err)
	require.True(t, info.Suspended, "killed in the final round: the device is left suspended")
}

// failingLoad fails its first Load.
type failingLoad struct {
	plan.Mapper
	failed bool
}

var errLoad = errors.New("injected: load failed")

func (m *failingLoad) Load(ctx context.Context, name string, line dm.TableLine) error {
	if !m.failed {
		m.failed = true
		return errLoad
	}
	return m.Mapper.Load(ctx, name, line)
}

func kernelRollback(t *testing.T, rc rollbackCase) {
	const size = 16 * mib
	l := newLabWith(t, size, size, rc.lab)
	ctx := context.Background()
	l.cutover()
	l.hostWrite(1*mib, randomBytes(64<<10))
	l.hostWrite(9*mib+4096, randomBytes(3*mib))
	_, err := l.p.Start(ctx, l.spec.Name)
	require.NoError(t, err)
	if rc.finalized {
		l.hydrate(3 * time.Minute)
		_, err = l.p.Finalize(ctx, l.spec.Name)
		require.NoError(t, err)
	} else {
		for i := 0; i < 3; i++ { // part of the copy hydrated, not all
			_, err := l.p.Tick(ctx, false)
			require.NoError(t, err)
		}
	}
	if rc.lab.oldBlockSize != 0 {
		v, err := l.p.Show(ctx, l.spec.Name)
		require.NoError(t, err)
		require.Equal(t, uint32(rc.lab.oldBlockSize), v.OldDisk.LogicalBlockSize, "the old LUN's logical block size")
		b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(l.hostDisk), "queue/logical_block_size"))
		require.NoError(t, err)
		t.Logf("old LUN: %d-byte logical blocks; the host's disk: %s-byte", v.OldDisk.LogicalBlockSize, strings.TrimSpace(string(b)))
	}

	data := newHostData(l.hostRead(size))
	w := startHostWriter(t, l.hostDisk, data)
	time.Sleep(time.Second) // writes before the rollback, on the new LUN only
	var cut string
	switch rc.fault {
	case killed:
		start := time.Now()
		l.killInFinalRound()
		t.Logf("killed in the final round %s after the rollback began", time.Since(start).Round(time.Millisecond))
	case loadFails:
		ports := kernel.Ports(kernel.Options{TickInterval: 200 * time.Millisecond})
		ports.Mapper = &failingLoad{Mapper: ports.Mapper}
		p, err := plan.New(plan.Options{StateDir: filepath.Join(l.dir, "state"), LockWait: 10 * time.Second,
			Ports: ports, Log: testLog{t}, PollInterval: 100 * time.Millisecond})
		require.NoError(t, err)
		_, err = p.Rollback(ctx, l.spec.Name, plan.RollbackOptions{})
		require.ErrorIs(t, err, errLoad)
		c, err := dm.Open(dm.Options{})
		require.NoError(t, err)
		info, err := c.Info(ctx, plan.DMName(l.spec.Name))
		require.NoError(t, err)
		require.False(t, info.Suspended, "the host's I/O goes on")
		require.False(t, info.InactivePresent)
		tbl, err := c.Table(ctx, plan.DMName(l.spec.Name))
		require.NoError(t, err)
		require.Equal(t, "clone", tbl[0].Type, "the clone serves the host again")
		c.Close()
		time.Sleep(time.Second) // the host writes through the clone again
	case powerCut:
		w = l.powerCutRollback(rc.at, w, data)
		cut = fmt.Sprintf("; before the power cut at %s: %d writes, %d errors (%v), longest write %s", rc.at, w.writes, w.errors, w.firstErr, w.longest)
		w = startHostWriter(t, l.hostDisk, data)
		time.Sleep(time.Second) // the host writes after the restore
	}
	rep, err := l.p.Rollback(ctx, l.spec.Name, plan.RollbackOptions{})
	require.NoError(t, err)
	time.Sleep(time.Second) // writes after it, through linear to the old LUN
	w.finish()

	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	require.Equal(t, plan.StepRolledBack, v.Step)
	t.Logf("rollback: from %s, %d rounds, %d bytes copied, %d in the final round, host I/O held %s; host: %d writes, %d errors, longest write %s%s",
		rep.From, rep.Rounds, rep.Copied, rep.FinalBytes, rep.Held.D(), w.writes, w.errors, w.longest, cut)
	require.Zero(t, w.errors, "the host's writes fail: %v", w.firstErr)
	require.Positive(t, w.writes)

	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	lower, err := c.Table(ctx, plan.DMName(l.spec.Name))
	require.NoError(t, err)
	require.Len(t, lower, 1)
	require.Equal(t, "linear", lower[0].Type, "%s", lower[0])
	tbl, err := c.Table(ctx, plan.EraName(l.spec.Name))
	require.NoError(t, err)
	require.Equal(t, "era", tbl[0].Type, "the export still serves the era device")

	// The old LUN alone: the whole device, from the proxy's disk and from
	// the old array's backing file, equals the host's view and what the
	// host wrote.
	whole := []clone.Extent{{Offset: 0, Length: size}}
	res, err := clone.Verify(ctx, v.OldDisk.Path, l.hostDisk, whole, clone.VerifyOptions{})
	require.NoError(t, err, "old LUN against the host's view")
	require.Equal(t, uint64(size), res.Compared)
	oldBytes, err := os.ReadFile(l.oldFile)
	require.NoError(t, err)
	data.check(t, "the old array's file", oldBytes)
}

// powerCutRollback runs the rollback (the crashpoints build of lunferry)
// until it waits at crash point at, cuts the proxy's power there (w, the
// host's writer, stopped once the host lost the proxy), restores, checks
// status and the host's data, and logs the host in again. It returns the
// stopped writer.
func (l *lab) powerCutRollback(at string, w *hostWriter, data *hostData) *hostWriter {
	t, ctx := l.t, context.Background()
	start := time.Now()
	out := killWhen(t, l.crashLunferry(at, "migrate", "rollback", l.spec.Name), "the rollback's crash point "+at, 3*time.Minute,
		func(out string) bool { return strings.Contains(out, crashpoint.Reached+at) })
	t.Logf("lunferry migrate rollback waited at %s %s after it began:\n%s", at, time.Since(start).Round(time.Millisecond), out)
	before, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	require.Equal(t, plan.StepRollingBack, before.Step)
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	l.powerCut(c)
	w.finish()

	t0 := time.Now()
	res, err := l.p.Restore(ctx)
	require.NoError(t, err)
	require.Len(t, res, 1)
	t.Logf("restore after the power cut (%s): rebuilt %v", time.Since(t0).Round(time.Millisecond), res[0].Rebuilt)
	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	require.Equal(t, plan.StepRollingBack, v.Step)
	require.Equal(t, before.Rollback, v.Rollback, "restore keeps the rollback's record")

	// What serves the host is what the record says: linear over the old
	// LUN once the swap was recorded, the clone before.
	want, serving := "clone", "proxy (clone)"
	if v.Rollback.Swapped {
		want = "linear"
		serving = "proxy (linear over the old LUN)"
	}
	lower, err := c.Table(ctx, plan.DMName(l.spec.Name))
	require.NoError(t, err)
	require.Len(t, lower, 1)
	require.Equal(t, want, lower[0].Type, "%s", lower[0])
	info, err := c.Info(ctx, plan.DMName(l.spec.Name))
	require.NoError(t, err)
	require.False(t, info.Suspended)
	st, err := l.p.Status(ctx, l.spec.Name)
	require.NoError(t, err)
	s := st.Volumes[0]
	t.Logf("status after restore: step %s, serving %q, next %q, drift %v, rollback %+v", s.Step, s.Serving, s.Next, s.Drift, *s.Rollback)
	require.Equal(t, plan.StepRollingBack, s.Step)
	require.Empty(t, s.Drift)
	require.Equal(t, serving, s.Serving)
	require.Contains(t, s.Next, "rollback")

	// The host logs in again and reads what it wrote.
	hookOut, err := l.runHook(l.spec.Hooks.PostCutover[0])
	require.NoError(t, err, "%s", hookOut)
	l.hostDisk = l.findHostDisk()
	data.check(t, "the host's disk after the restore", l.hostRead(len(data.bytes)))
	return w
}
