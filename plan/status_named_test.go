package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestStatusOfNamedVolumes: a status of named volumes reads their state
// files only (another volume's unreadable state does not stop it, as it
// stops a status of all), and its strays are the objects named after
// those volumes or after no volume; another volume's are left to its own
// status.
func TestStatusOfNamedVolumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	s2 := spec("vol2")
	s2.Old.LUN, s2.New.LUN, s2.Export.IQN = 2, 4, exportIQN+"-2"
	e.add(s2)
	e.k.AddDevice("lunferry-stray")
	e.k.AddDevice(plan.DMName("vol1"))
	e.k.AddDevice(plan.DMName("vol2"))
	bad := filepath.Join(e.dir, "volumes", "vol3.json")
	require.NoError(t, os.WriteFile(bad, []byte("{not json"), 0o600))

	_, err := e.p.Status(ctx)
	require.ErrorIs(t, err, plan.ErrStateCorrupt, "a status of all reads every state")

	rep, err := e.p.Status(ctx, "vol1", "vol1")
	require.NoError(t, err)
	require.Len(t, rep.Volumes, 1)
	require.Equal(t, "vol1", rep.Volumes[0].Name)
	require.ElementsMatch(t, []string{"dm device lunferry-stray", "dm device lunferry-vol1"}, rep.Strays)

	rep, err = e.p.Status(ctx, "vol2", "vol1")
	require.NoError(t, err)
	require.Equal(t, "vol1", rep.Volumes[0].Name, "sorted by name")
	require.ElementsMatch(t, []string{"dm device lunferry-stray", "dm device lunferry-vol1", "dm device lunferry-vol2"}, rep.Strays)

	_, err = e.p.Status(ctx, "vol1", "nope")
	require.ErrorIs(t, err, plan.ErrNotFound)

	require.NoError(t, os.Remove(bad))
	rep, err = e.p.Status(ctx)
	require.NoError(t, err)
	require.Len(t, rep.Volumes, 2)
	require.ElementsMatch(t, []string{"dm device lunferry-stray", "dm device lunferry-vol1", "dm device lunferry-vol2"}, rep.Strays)
}
