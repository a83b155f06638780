package plan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// hydratingEnv is vol1 cut over and hydrating, the host having written
// 32 MiB at 0 since cutover.
func hydratingEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	s := spec("vol1")
	s.Hooks.PreAbort = []string{"/hooks/host-off"}
	e.add(s)
	e.cutOver()
	_, err := e.p.Start(context.Background(), "vol1")
	require.NoError(t, err)
	e.k.HostWrite(plan.EraName("vol1"), 0, 32*mib)
	return e
}

// rolledBack checks vol1's device runs linear over the writable old LUN
// under the era layer the export serves, and nothing forbidden happened.
func (e *env) rolledBack() {
	e.t.Helper()
	v := e.show()
	require.Equal(e.t, plan.StepRolledBack, v.Step)
	d := e.k.Device(plan.DMName("vol1"))
	require.NotNil(e.t, d)
	require.Nil(e.t, d.Clone, "the device runs %s", d.Table)
	require.False(e.t, d.Suspended, "the host's I/O is not held")
	require.Equal(e.t, oldKey, e.k.DiskKey(d.Linear), "linear over the old LUN")
	require.Equal(e.t, plan.LinearLine(v.SizeSectors, v.OldDisk.Path).String(), d.Table)
	require.False(e.t, e.k.ReadOnly(oldKey), "the host's writes go to the old LUN")
	e.servesEra()
	require.Empty(e.t, e.k.Violations())
}

// copiedAll checks that every block the host wrote since cutover was
// copied to the old LUN after it was last written: the final copy covers
// the blocks written during the rounds.
func copiedAll(t *testing.T, k *plantest.Kernel, want []clone.Extent) {
	t.Helper()
	var got []clone.Extent
	for _, c := range k.CopyBacks {
		require.Equal(t, oldKey, c.OldKey, "copies go to the old LUN")
		got = append(got, c.Extents...)
	}
	for _, w := range want {
		assert.True(t, covered(w, got), "%v written by the host was not copied back", w)
	}
}

// covered reports whether the union of set covers x.
func covered(x clone.Extent, set []clone.Extent) bool {
	at := x.Offset
	for progress := true; progress && at < x.End(); {
		progress = false
		for _, s := range set {
			if s.Offset <= at && at < s.End() {
				at, progress = s.End(), true
			}
		}
	}
	return at >= x.End()
}

// TestRollbackRounds: rounds copy from the host's view what the host wrote
// since the last, until a round is small; the final one copies the rest
// from the new LUN with the device below the era suspended, then the device
// runs linear over the old LUN.
func TestRollbackRounds(t *testing.T) {
	ctx := context.Background()
	e := hydratingEnv(t)
	era := plan.EraName("vol1")
	e.k.DuringCopyBack = func(n int) {
		switch n {
		case 1:
			e.k.HostWrite(era, 100*mib, 70*mib) // round 2 is not small
		case 2:
			e.k.HostWrite(era, 300*mib, 4*mib) // round 3 is
		case 3:
			e.k.HostWrite(era, 500*mib, 64*kib) // left for the final round
		}
	}
	rep, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	e.rolledBack()

	eraDev := e.k.Device(era).Node
	newDisk := e.show().NewDisk.Path
	var got []string
	for _, c := range e.k.CopyBacks {
		got = append(got, fmt.Sprintf("%s %v held=%v", c.Src, c.Extents, c.Held))
	}
	require.Equal(t, []string{
		fmt.Sprintf("%s %v held=false", eraDev, []clone.Extent{{Offset: 0, Length: 32 * mib}}),
		fmt.Sprintf("%s %v held=false", eraDev, []clone.Extent{{Offset: 100 * mib, Length: 70 * mib}}),
		fmt.Sprintf("%s %v held=false", eraDev, []clone.Extent{{Offset: 300 * mib, Length: 4 * mib}}),
		fmt.Sprintf("%s %v held=true", newDisk, []clone.Extent{{Offset: 500 * mib, Length: 64 * kib}}),
	}, got)
	assert.Contains(t, e.k.SentMessages(), plan.DMName("vol1")+" "+dm.MsgDisableHydration, "hydration stops first")
	assert.False(t, e.k.Device(plan.DMName("vol1")).Enabled)
	assert.Equal(t, 4, rep.Rounds, "three rounds and the final one")
	assert.Equal(t, uint64(106*mib+64*kib), rep.Copied)
	assert.Equal(t, uint64(64*kib), rep.FinalBytes)
	assert.Contains(t, rep.Message, "nothing lost")
	assert.Contains(t, e.log.String(), "the host's I/O was held for")

	// Done: a rerun has nothing to do; finalize, start and handover are
	// refused with a hint.
	_, err = e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	_, err = e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	require.ErrorContains(t, err, "rolled back")
	_, err = e.p.Start(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.ErrorIs(t, err, plan.ErrWrongStep)

	st, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, "proxy (linear over the old LUN)", st.Volumes[0].Serving)
	require.NoError(t, st.Check(), "the kernel is as recorded")
	require.Empty(t, st.Volumes[0].LiveError)
}

// TestRollbackStopsAfterEightRounds: a host that writes more each round
// than the last gets the final round after eight.
func TestRollbackStopsAfterEightRounds(t *testing.T) {
	e := hydratingEnv(t)
	e.k.DuringCopyBack = func(n int) { e.k.HostWrite(plan.EraName("vol1"), uint64(n)*64*mib, 40*mib) }
	rep, err := e.p.Rollback(context.Background(), "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	e.rolledBack()
	require.Equal(t, 9, rep.Rounds)
	require.Len(t, e.k.CopyBacks, 9)
	require.True(t, e.k.CopyBacks[8].Held)
	want := []clone.Extent{{Offset: 0, Length: 32 * mib}}
	for n := uint64(1); n <= 8; n++ {
		want = append(want, clone.Extent{Offset: n * 64 * mib, Length: 40 * mib})
	}
	copiedAll(t, e.k, want)
}

// TestRollbackRefused: rollback is refused, nothing changed, where it
// cannot give the host its data back on the old LUN.
func TestRollbackRefused(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		setup func(e *env)
		hint  string
	}{
		{"before cutover", func(e *env) {
			e.add(spec("vol1"))
			_, err := e.p.Prepare(ctx, "vol1")
			require.NoError(e.t, err)
		}, "nothing to roll back"},
		{"online pass-through", func(e *env) {
			e.add(onlineSpec())
			_, err := e.p.Prepare(ctx, "vol1")
			require.NoError(e.t, err)
			e.k.HookFail[removeDirect] = fmt.Errorf("%w: exit 1", plan.ErrHook)
			_, err = e.p.CutoverWith(ctx, "vol1", plan.CutoverOptions{Online: true})
			require.ErrorIs(e.t, err, plan.ErrHook)
			e.passesThrough()
		}, "backs it out with nothing lost"},
		{"no era layer", func(e *env) {
			e.eraless()
			e.add(spec("vol1"))
			e.cutOver()
			e.p = e.planner(false)
		}, "without an era layer"},
		{"region not a multiple of the era block", func(e *env) {
			// volume add refuses such a spec now; an earlier lunferry
			// recorded it.
			s := spec("vol1")
			s.RegionSectors = 256
			s.EraBlockSectors = 256
			e.add(s)
			e.cutOver()
			e.rewriteVolume("vol1", `"regionSectors": 256`, `"regionSectors": 128`)
		}, "not a multiple of the era block"},
		{"handed over", func(e *env) {
			e.add(spec("vol1"))
			e.cutOver()
			_, err := e.p.Start(ctx, "vol1")
			require.NoError(e.t, err)
			e.hydrate("vol1")
			_, err = e.p.Finalize(ctx, "vol1")
			require.NoError(e.t, err)
			e.k.HostLogsIn = false
			_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
			require.NoError(e.t, err)
		}, "nothing to roll back to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.setup(e)
			before := e.show()
			e.k.ResetCalls()
			_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
			var se *plan.StepError
			require.ErrorAs(t, err, &se)
			require.ErrorContains(t, err, c.hint)
			after := e.show()
			require.Equal(t, before.Step, after.Step)
			require.Nil(t, after.Rollback)
			require.Empty(t, e.k.CopyBacks, "the old LUN is not written")
			require.Empty(t, mutations(e.k.Calls()), "nothing changed in the kernel")
		})
	}
}

// TestRollbackDryRun reports what the host wrote and changes nothing.
func TestRollbackDryRun(t *testing.T) {
	e := hydratingEnv(t)
	e.k.ResetCalls()
	rep, err := e.p.Rollback(context.Background(), "vol1", plan.RollbackOptions{DryRun: true})
	require.NoError(t, err)
	require.True(t, rep.DryRun)
	require.Equal(t, uint64(32*mib), rep.WrittenBytes)
	require.Contains(t, rep.Message, "nothing was changed")
	v := e.show()
	require.Equal(t, plan.StepHydrating, v.Step)
	require.Nil(t, v.Rollback)
	require.Empty(t, e.k.CopyBacks)
	require.True(t, e.k.Device(plan.DMName("vol1")).Enabled, "hydration goes on")

	_, err = e.p.Rollback(context.Background(), "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	rep, err = e.p.Rollback(context.Background(), "vol1", plan.RollbackOptions{DryRun: true})
	require.NoError(t, err)
	require.Contains(t, rep.Message, "already rolled back")
}

// TestAbortAfterRollback ends the migration on the old array: the proxy's
// objects go and the report says the old LUN holds every write.
func TestAbortAfterRollback(t *testing.T) {
	ctx := context.Background()
	e := hydratingEnv(t)
	_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	rep, err := e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepRolledBack, rep.From)
	require.False(t, rep.HostWritesLost)
	require.Contains(t, rep.Message, "holds every write")
	require.NotContains(t, rep.Message, "ONLY on the new LUN")
	require.Equal(t, 1, e.hooksRun("/hooks/host-off"), "the pre-abort hook moves the host")
	e.clean("vol1")
	require.Empty(t, e.k.Violations())
}

// TestRestoreRolledBack: after a reboot, restore builds linear over the
// old LUN (writable) under the era layer.
func TestRestoreRolledBack(t *testing.T) {
	ctx := context.Background()
	e := hydratingEnv(t)
	_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	e.rolledBack()
}

// TestRollbackCrashAtEveryPoint kills the process at every kernel call of
// a rollback, before or after the call, or cuts the power there; the
// rollback is then rerun (after a restore for a power cut, and with or
// without one for a kill) and ends rolled back, every block the host wrote
// copied back after its last write.
func TestRollbackCrashAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	host := func(e *env) {
		e.k.DuringCopyBack = func(n int) {
			if n == 1 {
				e.k.HostWrite(plan.EraName("vol1"), 100*mib, 20*mib)
			}
		}
	}
	e := hydratingEnv(t)
	host(e)
	e.k.ResetCalls()
	_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	calls := e.k.Calls()
	total := len(calls)
	require.GreaterOrEqual(t, total, 12)
	t.Logf("rollback makes %d kernel calls: %v", total, calls)
	resume := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Resume ") }) + 1
	require.Equal(t, total, resume, "the final resume is the last call")

	for n := 1; n <= total; n++ {
		for _, how := range []string{"kill", "kill-after", "kill-restore", "power", "power-after"} {
			t.Run(fmt.Sprintf("op%d-%s", n, how), func(t *testing.T) {
				e := hydratingEnv(t)
				host(e)
				e.k.ResetCalls()
				e.k.CrashAt, e.k.CrashAfter = n, how == "kill-after" || how == "power-after"
				// What the process saves after its death never happened
				// (a death just after the last call included).
				var files map[string][]byte
				e.k.OnCrash = func(plantest.Inventory) { files = readVolumes(t, e.dir) }
				_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
				require.NotNil(t, files, "the crash point was reached")
				e.k.CrashAt, e.k.CrashAfter, e.k.OnCrash = 0, false, nil
				writeVolumes(t, e.dir, files)
				if err == nil {
					require.True(t, n == total && strings.HasSuffix(how, "-after"), "only a death after the last call lets it finish")
				} else {
					require.ErrorIs(t, err, plantest.ErrCrash)
				}
				e.p = e.planner(false) // a new process
				switch how {
				case "power", "power-after":
					e.k.Reboot()
					fallthrough
				case "kill-restore":
					_, err := e.p.Restore(ctx)
					require.NoError(t, err)
					st, err := e.p.Status(ctx, "vol1")
					require.NoError(t, err)
					require.NoError(t, st.Check(), "restore leaves the kernel as recorded")
					require.Empty(t, e.k.Violations())
					if how == "power-after" && n == resume {
						// The host may have written the old LUN alone
						// since the resume: the clone must not come back.
						d := e.k.Device(plan.DMName("vol1"))
						require.Equal(t, oldKey, e.k.DiskKey(d.Linear), "restore after the swap's resume builds linear over the old LUN, not %s", d.Table)
					}
				}
				// The host writes again before the rerun: through the
				// clone to the new LUN, unless the swap was made (then
				// to the old LUN, at once or once resumed).
				d, v := e.k.Device(plan.DMName("vol1")), e.show()
				swapped := (v.Rollback != nil && v.Rollback.Swapped) || (d != nil && (d.Linear != "" || d.Inactive != nil))
				e.k.HostWrite(plan.EraName("vol1"), 700*mib, 4*kib)
				want := []clone.Extent{{Offset: 0, Length: 32 * mib}, {Offset: 100 * mib, Length: 20 * mib}}
				if !swapped {
					want = append(want, clone.Extent{Offset: 700 * mib, Length: 64 * kib})
				}
				_, err = e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
				require.NoError(t, err)
				e.rolledBack()
				copiedAll(t, e.k, want)
				last := e.k.CopyBacks[len(e.k.CopyBacks)-1]
				require.True(t, last.Held, "the last copy is the final round's, with the host's I/O held")
			})
		}
	}
}

// rollbackCalls are the kernel calls of a whole rollback of a hydrating
// vol1, in order: where a test makes one of them fail.
func rollbackCalls(t *testing.T) []string {
	t.Helper()
	e := hydratingEnv(t)
	e.k.ResetCalls()
	_, err := e.p.Rollback(context.Background(), "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	return e.k.Calls()
}

// TestRollbackFailureInFinalRoundResumesTheHost: a final round that fails
// before its swap resumes the device with the clone, and the rerun
// finishes.
func TestRollbackFailureInFinalRoundResumesTheHost(t *testing.T) {
	ctx := context.Background()
	calls := rollbackCalls(t)
	suspend := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Suspend ") })
	require.Positive(t, suspend)
	for _, op := range []string{"EraWrittenSince", "CopyBack", "SetReadWrite", "Load"} {
		t.Run(op, func(t *testing.T) {
			i := slices.IndexFunc(calls[suspend:], func(c string) bool { return strings.HasPrefix(c, op+" ") })
			require.GreaterOrEqual(t, i, 0, "%s in the final round", op)
			e := hydratingEnv(t)
			e.k.ResetCalls()
			e.k.FailAt = suspend + i + 1
			_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
			require.ErrorIs(t, err, plantest.ErrInjected)
			require.ErrorContains(t, err, "rerun `lunferry migrate rollback vol1`")
			d := e.k.Device(plan.DMName("vol1"))
			require.False(t, d.Suspended, "the host's I/O goes on")
			require.NotNil(t, d.Clone, "with the clone")
			require.Equal(t, plan.StepRollingBack, e.show().Step)
			e.k.FailAt = 0
			e.rerunRollback()
		})
	}
}

// finalizedEnvWith is vol1 of s finalized, the host having written 32 MiB
// at 0 since cutover.
func finalizedEnvWith(t *testing.T, s plan.Spec) *env {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	e.add(s)
	e.cutOver()
	e.k.HostWrite(plan.EraName("vol1"), 0, 32*mib)
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.NotNil(t, e.show().OldDisk, "finalize keeps the old disk's record")
	return e
}

// TestRollbackAfterFinalize: the pre-rollback hook maps the old LUN to the
// proxy again; it is attached (the recorded LUN, read-only) and fenced,
// the rounds and the final copy (from the new LUN, the host's view) run,
// and the device runs linear over the old LUN; restore after a reboot
// attaches the old LUN before it builds the device over it, and abort
// ends on the old array with nothing lost.
func TestRollbackAfterFinalize(t *testing.T) {
	ctx := context.Background()
	s := spec("vol1")
	s.Hooks.PreRollback = []string{"/hooks/map-old"}
	s.Hooks.PreAbort = []string{"/hooks/host-off"}
	s.RegionSectors, s.EraBlockSectors = 256, 256
	e := finalizedEnvWith(t, s)
	// No clone is left to check the era block against: one an earlier
	// lunferry recorded over smaller regions is rolled back all the same.
	e.rewriteVolume("vol1", `"regionSectors": 256`, `"regionSectors": 128`)
	require.False(t, e.k.Session(oldTarget), "finalize let the old LUN go")
	e.k.HostWrite(plan.EraName("vol1"), 600*mib, 4*kib)

	rep, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	e.rolledBack()
	require.Equal(t, plan.StepFinalized, rep.From)
	require.Equal(t, 1, e.hooksRun("/hooks/map-old"))
	require.True(t, e.k.Session(oldTarget))
	require.NotZero(t, e.k.Inventory().Fences[oldKey], "fenced again")
	copiedAll(t, e.k, []clone.Extent{{Offset: 0, Length: 32 * mib}, {Offset: 600 * mib, Length: 128 * kib}})
	require.NotContains(t, e.k.SentMessages(), plan.DMName("vol1")+" "+dm.MsgDisableHydration, "no clone to stop")

	e.k.Reboot()
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Equal(t, []plan.ObjectKind{plan.ObjNewLogin, plan.ObjOldLogin, plan.ObjFence, plan.ObjDevice, plan.ObjEra, plan.ObjExport}, res[0].Rebuilt,
		"the old LUN is attached before the device over it")
	e.rolledBack()

	ab, err := e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	require.False(t, ab.HostWritesLost)
	require.Contains(t, ab.Message, "holds every write")
	e.clean("vol1")
}

// TestRollbackAfterFinalizeRefusesAnotherLUN: the LUN mapped to the proxy
// again must be the one recorded at cutover.
func TestRollbackAfterFinalizeRefusesAnotherLUN(t *testing.T) {
	ctx := context.Background()
	e := finalizedEnvWith(t, spec("vol1"))
	e.k.LUNs[oldKey] = plantest.LUNInfo{Size: 1 * gib, ID: "wwid-someone-else"}
	_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.ErrorIs(t, err, plan.ErrDiskChanged)
	require.Empty(t, e.k.CopyBacks, "nothing written")
	require.Equal(t, plan.StepRollingBack, e.show().Step)
	// Not yet rolled back: abort is refused (the host's writes are on the
	// new LUN only); the rerun, once the mapping is fixed, finishes.
	_, err = e.p.Abort(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	require.ErrorContains(t, err, "rerun `lunferry migrate rollback vol1`")
	e.k.LUNs[oldKey] = plantest.LUNInfo{Size: 1 * gib, ID: "wwid-old"}
	_, err = e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	e.rolledBack()
}

// TestAbortRefusedOnceRollbackCopies: an abort in the middle of a rollback
// would hand the host an old LUN holding part of its writes since cutover
// over the data as of cutover (a torn filesystem): refused once the first
// round began, allowed before it (nothing written to the old LUN yet).
func TestAbortRefusedOnceRollbackCopies(t *testing.T) {
	ctx := context.Background()
	copyAt := slices.IndexFunc(rollbackCalls(t), func(c string) bool { return strings.HasPrefix(c, "CopyBack ") })
	require.Positive(t, copyAt)

	e := hydratingEnv(t)
	e.k.ResetCalls()
	e.k.FailAt = copyAt + 1
	_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.ErrorIs(t, err, plantest.ErrInjected)
	_, err = e.p.Abort(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	require.ErrorContains(t, err, "rerun `lunferry migrate rollback vol1` to finish it")
	require.Equal(t, plan.StepRollingBack, e.show().Step)
	e.k.FailAt = 0
	_, err = e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	e.rolledBack()
	rep, err := e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	require.False(t, rep.HostWritesLost)

	e = hydratingEnv(t)
	e.k.ResetCalls()
	e.k.FailAt = 1 // before the first round
	_, err = e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.Error(t, err)
	if r := e.show().Rollback; r != nil {
		require.Zero(t, r.Round)
	}
	_, err = e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
}

// rewriteVolume replaces old by new everywhere in vol's state file, as an
// earlier lunferry could have written it.
func (e *env) rewriteVolume(vol, old, new string) {
	e.t.Helper()
	p := filepath.Join(e.dir, "volumes", vol+".json")
	b, err := os.ReadFile(p)
	require.NoError(e.t, err)
	require.Contains(e.t, string(b), old)
	require.NoError(e.t, os.WriteFile(p, []byte(strings.ReplaceAll(string(b), old, new)), 0o600))
}

// TestRollbackPowerCutAfterSwapRecordedReport: the power is cut after the
// final round recorded its swap, before the resume; restore builds linear
// over the old LUN and the rerun only records the step. Its report counts
// the final round's copy (every byte copied was recorded) and does not
// claim a hold it never measured.
func TestRollbackPowerCutAfterSwapRecordedReport(t *testing.T) {
	ctx := context.Background()
	calls := rollbackCalls(t)
	resume := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Resume ") })
	require.Positive(t, resume)
	e := hydratingEnv(t)
	e.k.DuringCopyBack = func(n int) {
		if n == 2 {
			e.k.HostWrite(plan.EraName("vol1"), 100*mib, 64*kib) // left for the final round
		}
	}
	e.k.ResetCalls()
	e.k.CrashAt = resume + 1
	var files map[string][]byte
	e.k.OnCrash = func(plantest.Inventory) { files = readVolumes(t, e.dir) }
	_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.ErrorIs(t, err, plantest.ErrCrash)
	require.NotNil(t, files)
	e.k.CrashAt, e.k.OnCrash = 0, nil
	writeVolumes(t, e.dir, files)
	require.True(t, e.show().Rollback.Swapped, "the power was cut after the swap was recorded")
	e.p = e.planner(false)
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)

	rep, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.NoError(t, err)
	e.rolledBack()
	require.Len(t, e.k.CopyBacks, 3, "two rounds (the first one large), then the final one; nothing copied after the power cut")
	assert.Equal(t, uint64(32*mib+64*kib), rep.Copied, "the final round's copy counted")
	assert.Equal(t, uint64(64*kib), rep.FinalBytes)
	assert.Zero(t, rep.Held)
	assert.NotContains(t, rep.Message, "held 0s")
	assert.Contains(t, rep.Message, "not measured")
}

// TestRollbackRerunBetweenRoundsCopiesFirst: a rollback interrupted
// between its rounds (the first one recorded done, small enough for the
// final one) is rerun after the host wrote 4 MiB more: the rerun copies
// them in a round first and holds the host's I/O only for what the host
// wrote during that round, not for all it wrote since the interruption.
func TestRollbackRerunBetweenRoundsCopiesFirst(t *testing.T) {
	ctx := context.Background()
	calls := rollbackCalls(t)
	suspend := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Suspend ") })
	require.Positive(t, suspend)
	e := hydratingEnv(t)
	e.k.ResetCalls()
	e.k.CrashAt = suspend + 1
	var files map[string][]byte
	e.k.OnCrash = func(plantest.Inventory) { files = readVolumes(t, e.dir) }
	_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
	require.ErrorIs(t, err, plantest.ErrCrash)
	e.k.CrashAt, e.k.OnCrash = 0, nil
	writeVolumes(t, e.dir, files)
	// The record as at the crash point rollback:copied: the round done,
	// the final round not begun.
	v := e.show()
	require.True(t, v.Rollback.Final)
	v.Rollback.Final, v.Rollback.Round = false, v.Rollback.Round-1
	require.NoError(t, e.p.Store().Save(v))
	e.p = e.planner(false)
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	e.k.HostWrite(plan.EraName("vol1"), 100*mib, 4*mib)

	rerun := e.rerunRollback()
	require.Equal(t, []clone.Extent{{Offset: 100 * mib, Length: 4 * mib}}, rerun[0].Extents, "the round copies what the host wrote since")
	require.Empty(t, rerun[1].Extents, "the host wrote nothing during the round")
}

// rerunRollback reruns vol1's rollback to its end and returns its copies:
// a round, then the final one with the host's I/O held.
func (e *env) rerunRollback() []plantest.CopyBackCall {
	e.t.Helper()
	copies := len(e.k.CopyBacks)
	_, err := e.p.Rollback(context.Background(), "vol1", plan.RollbackOptions{})
	require.NoError(e.t, err)
	e.rolledBack()
	rerun := e.k.CopyBacks[copies:]
	require.Len(e.t, rerun, 2, "a round, then the final one")
	require.False(e.t, rerun[0].Held)
	require.True(e.t, rerun[1].Held)
	return rerun
}
