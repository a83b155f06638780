package plan_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestMissingTargetRefusedBeforeTheWindow: a proxy whose kernel cannot
// build the clone or the era device is refused at prepare and at cutover,
// before the pre-cutover hook quiesces the host; nothing is made.
func TestMissingTargetRefusedBeforeTheWindow(t *testing.T) {
	ctx := context.Background()
	for target, fix := range map[string]string{"clone": "lunferry-dm-clone-dkms", "era": "modprobe dm_era"} {
		t.Run(target, func(t *testing.T) {
			e := newEnv(t)
			e.add(spec("vol1"))
			e.k.MissingTargets = []string{target}
			_, err := e.p.Prepare(ctx, "vol1")
			require.ErrorIs(t, err, plan.ErrMissingTarget)
			assert.ErrorContains(t, err, fix)
			assert.NoFileExists(t, e.metaFile(), "prepare made nothing")

			e.k.MissingTargets = nil
			_, err = e.p.Prepare(ctx, "vol1")
			require.NoError(t, err)
			e.k.MissingTargets = []string{target}
			_, err = e.p.Cutover(ctx, "vol1")
			require.ErrorIs(t, err, plan.ErrMissingTarget)
			assert.Empty(t, e.k.Hooks, "no hook ran")
			v, err := e.p.Show(ctx, "vol1")
			require.NoError(t, err)
			assert.Equal(t, plan.StepPrepared, v.Step)

			e.k.MissingTargets = nil
			_, err = e.p.Cutover(ctx, "vol1")
			require.NoError(t, err, "the rerun after the fix")
		})
	}
}
