package dm

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Result buffers captured from Debian's 6.1.0-56-amd64 kernel in the lab by
// TestKernelCaptureBuffers: the parsers read real kernel bytes, not only
// bytes laid out by the tests' own encoders.
func captured(t *testing.T, what string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/kernel-6.1_" + what + ".hex")
	require.NoError(t, err)
	d, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", ""))
	require.NoError(t, err)
	return d
}

func TestCapturedListDevices(t *testing.T) {
	l, err := parseNameList(captured(t, "list_devices"))
	require.NoError(t, err)
	assert.Equal(t, []ListEntry{
		{Name: "lunferry-capture-a", UUID: "LUNFERRY-capture-a", Dev: DevNum{253, 0}},
		{Name: "lunferry-capture-b", UUID: "LUNFERRY-capture-b-0123456789", Dev: DevNum{253, 1}},
	}, l)
}

func TestCapturedListVersions(t *testing.T) {
	v, err := parseTargetVersions(captured(t, "list_versions"))
	require.NoError(t, err)
	var names []string
	for _, x := range v {
		names = append(names, x.Name)
	}
	assert.Equal(t, []string{"era", "snapshot-merge", "snapshot-origin", "snapshot", "clone", "striped", "linear", "error"}, names)
	assert.Equal(t, "clone v1.0.0", v[4].String())
}

func TestCapturedDeps(t *testing.T) {
	d, err := parseDeps(captured(t, "deps"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []DevNum{{7, 0}, {7, 1}, {7, 2}}, d)
}

func TestCapturedTableAndStatus(t *testing.T) {
	tbl, err := parseTargetSpecs(captured(t, "table"), 3)
	require.NoError(t, err)
	want := Table{
		{Start: 0, Length: 1024, Target: Linear{Device: "7:0", Offset: 8}},
		{Start: 1024, Length: 8, Target: Error{}},
		{Start: 1032, Length: 2048, Target: Clone{Metadata: "7:2", Destination: "7:1", Source: "7:0", RegionSize: 8, NoHydration: true}},
	}
	for i, l := range tbl {
		assert.Equal(t, want[i].String(), l.String(), "what lunferry loads, the kernel reports")
	}

	st, err := parseTargetSpecs(captured(t, "status"), 3)
	require.NoError(t, err)
	b, err := os.ReadFile("testdata/kernel-6.1_status_lines.txt")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, st, len(lines))
	for i := range st {
		assert.Equal(t, lines[i], st[i].String())
	}
	cs, err := ParseCloneStatus(st[2].Params)
	require.NoError(t, err)
	assert.Equal(t, uint64(256), cs.TotalRegions)
	assert.Equal(t, Sectors(8), cs.RegionSize)
	assert.False(t, cs.HydrationEnabled())
}
