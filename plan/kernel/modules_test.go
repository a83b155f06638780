package kernel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestModuleInstalled(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(
		"kernel/drivers/md/dm-era.ko.xz: kernel/drivers/md/persistent-data/dm-persistent-data.ko.xz kernel/drivers/md/dm-bufio.ko.xz\n"+
			"updates/dkms/dm-clone.ko: kernel/drivers/md/persistent-data/dm-persistent-data.ko.xz\n"+
			"kernel/drivers/md/dm_thin_pool.ko.zst:\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/md/dm-mod.ko\n"), 0o644))
	for module, want := range map[string]bool{
		"dm-era":             true,  // compressed, with dependencies
		"dm-clone":           true,  // DKMS
		"dm-thin-pool":       true,  // underscores in the file name
		"dm_era":             true,  // underscores in the name asked
		"dm-mod":             true,  // built in
		"dm-persistent-data": false, // only a dependency here, not a line of its own
		"dm-cache":           false,
	} {
		got, err := moduleInstalled(dir, module)
		require.NoError(t, err, module)
		assert.Equal(t, want, got, module)
	}
	got, err := moduleInstalled(t.TempDir(), "dm-era")
	require.NoError(t, err)
	assert.False(t, got, "no modules.dep: not installed")
}
