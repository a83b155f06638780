package dm

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKernelCaptureBuffers prints raw result buffers and status lines from
// the real kernel ("CAPTURE name hex"), the source of testdata/kernel_*.
// It also checks they parse.
func TestKernelCaptureBuffers(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	_, aDev, _ := loop(t, 1<<20, 0)
	_, bDev, _ := loop(t, 1<<20, 0)
	_, mDev, _ := loop(t, 1<<20, 0)
	n1 := "lunferry-capture-a"
	mustCreate(t, c, n1, "LUNFERRY-capture-a", Table{
		{Start: 0, Length: 1024, Target: Linear{Device: aDev, Offset: 8}},
		{Start: 1024, Length: 8, Target: Error{}},
		{Start: 1032, Length: 2048, Target: Clone{Metadata: mDev, Destination: bDev, Source: aDev, RegionSize: 8, NoHydration: true}},
	})
	n2 := "lunferry-capture-b"
	mustCreate(t, c, n2, "LUNFERRY-capture-b-0123456789", Table{{Length: 8, Target: Error{}}})

	capture := func(what string, cmd int, h header) []byte {
		_, data, err := c.call(ctx, cmd, h, nil, true)
		require.NoError(t, err, what)
		t.Logf("CAPTURE %s %s", what, hex.EncodeToString(data))
		return data
	}
	l, err := parseNameList(capture("list_devices", cmdListDevices, header{Flags: flagUUID}))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(l), 2)
	_, err = parseTargetVersions(capture("list_versions", cmdListVersions, header{}))
	require.NoError(t, err)
	_, err = parseDeps(capture("deps", cmdTableDeps, header{Name: n1}))
	require.NoError(t, err)
	_ = capture("table", cmdTableStatus, header{Name: n1, Flags: flagStatusTable})
	_ = capture("status", cmdTableStatus, header{Name: n1})
	st, err := c.Status(ctx, n1)
	require.NoError(t, err)
	require.Len(t, st, 3)
	for _, s := range st {
		t.Logf("STATUSLINE %s", s)
	}
}
