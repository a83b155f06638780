package plan_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
)

func TestTableLines(t *testing.T) {
	c := dm.Clone{Metadata: "/dev/loop0", Destination: "/dev/sdb", Source: "/dev/sdc", RegionSize: 128, NoHydration: true}
	require.Equal(t, "0 2097152 clone /dev/loop0 /dev/sdb /dev/sdc 128 1 no_hydration", plan.CloneLine(2097152, c).String())
	c.NoHydration = false
	require.Equal(t, "0 2097152 clone /dev/loop0 /dev/sdb /dev/sdc 128", plan.CloneLine(2097152, c).String())
	c.NoHydration, c.NoDiscardPassdown = true, true
	require.Equal(t, "0 2097152 clone /dev/loop0 /dev/sdb /dev/sdc 128 2 no_hydration no_discard_passdown", plan.CloneLine(2097152, c).String())
	require.Equal(t, "0 2097152 linear /dev/sdb 0", plan.LinearLine(2097152, "/dev/sdb").String())
}

func TestBytes(t *testing.T) {
	for in, want := range map[string]plan.Bytes{"4096": 4096, "64MiB": 64 << 20, "1G": 1 << 30, "1.5KiB": 1536, "2T": 2 << 40} {
		got, err := plan.ParseBytes(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := plan.ParseBytes("lots")
	require.Error(t, err)
	require.Equal(t, "64MiB", plan.Bytes(64<<20).String())
}
