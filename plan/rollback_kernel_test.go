package plan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// hostWriter writes 4 KiB blocks of random data at random offsets of the
// host's disk (O_DIRECT|O_DSYNC, one at a time) into model, the host's
// disk as it must read, until stopped; it counts writes and errors and
// keeps the longest write.
type hostWriter struct {
	mu             sync.Mutex
	model          []byte
	writes, errors int
	longest        time.Duration
	firstErr       error
	stop           chan struct{}
	done           chan struct{}
}

func startHostWriter(t *testing.T, disk string, model []byte) *hostWriter {
	w := &hostWriter{model: model, stop: make(chan struct{}), done: make(chan struct{})}
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
			} else {
				w.writes++
				copy(w.model[off:], buf)
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
	t.Run("hydrating", func(t *testing.T) { kernelRollback(t, false, noFault) })
	t.Run("finalized", func(t *testing.T) { kernelRollback(t, true, noFault) })
	t.Run("load fails", func(t *testing.T) { kernelRollback(t, false, loadFails) })
	t.Run("killed", func(t *testing.T) { kernelRollback(t, false, killed) })
}

// rollbackFault is what goes wrong in a lab rollback's first attempt.
type rollbackFault int

const (
	noFault rollbackFault = iota
	loadFails
	killed
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
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRollback$")
	cmd.Env = append(os.Environ(), rollbackHelperEnv+"="+state, "LUNFERRY_PLAN_HELPER_VOLUME="+l.spec.Name)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the final round never began: %s", out.String())
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
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

func kernelRollback(t *testing.T, finalized bool, fault rollbackFault) {
	const size = 16 * mib
	l := newLab(t, size, size)
	ctx := context.Background()
	l.cutover()
	l.hostWrite(1*mib, randomBytes(64<<10))
	l.hostWrite(9*mib+4096, randomBytes(3*mib))
	_, err := l.p.Start(ctx, l.spec.Name)
	require.NoError(t, err)
	if finalized {
		l.hydrate(3 * time.Minute)
		_, err = l.p.Finalize(ctx, l.spec.Name)
		require.NoError(t, err)
	} else {
		for i := 0; i < 3; i++ { // part of the copy hydrated, not all
			_, err := l.p.Tick(ctx, false)
			require.NoError(t, err)
		}
	}

	model := l.hostRead(size)
	w := startHostWriter(t, l.hostDisk, model)
	time.Sleep(time.Second) // writes before the rollback, on the new LUN only
	if fault == killed {
		start := time.Now()
		l.killInFinalRound()
		t.Logf("killed in the final round %s after the rollback began", time.Since(start).Round(time.Millisecond))
	}
	if fault == loadFails {
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
	}
	rep, err := l.p.Rollback(ctx, l.spec.Name, plan.RollbackOptions{})
	require.NoError(t, err)
	time.Sleep(time.Second) // writes after it, through linear to the old LUN
	w.finish()

	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	require.Equal(t, plan.StepRolledBack, v.Step)
	t.Logf("rollback: from %s, %d rounds, %d bytes copied, %d in the final round, host I/O held %s; host: %d writes, %d errors, longest write %s",
		rep.From, rep.Rounds, rep.Copied, rep.FinalBytes, rep.Held.D(), w.writes, w.errors, w.longest)
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
	res, err = clone.Compare(ctx, "old array's file", bytes.NewReader(oldBytes), "host's writes", bytes.NewReader(model), whole, clone.VerifyOptions{})
	require.NoError(t, err, "the old LUN holds every write of the host")
	require.Equal(t, uint64(size), res.Compared)
}
