package plan_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestKernelSameLUNTwoPortals: the "new" LUN is the old one reached through
// another portal of the same array; prepare finds out through the disks'
// WWIDs and refuses.
func TestKernelSameLUNTwoPortals(t *testing.T) {
	l := newLab(t, 16*mib, 16*mib)
	ctx := context.Background()
	second := l.old.Portals[0].Addr.As4()
	second[3] += 100
	l.old.Portals = append(l.old.Portals, lioPortal(netip.AddrFrom4(second)))
	require.NoError(t, l.root.Apply(ctx, l.old))
	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	v.Spec.New = plan.LUN{Portal: netip.AddrPortFrom(netip.AddrFrom4(second), 3260).String(), IQN: l.old.TargetIQN}
	require.NoError(t, l.p.Store().Save(v))
	_, err = l.p.Prepare(ctx, l.spec.Name)
	require.ErrorIs(t, err, plan.ErrSameLUN)
	v, err = l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	t.Logf("old %+v new %+v", v.OldDisk, v.NewDisk)
	_, err = l.p.Abort(ctx, l.spec.Name)
	require.NoError(t, err)
}
