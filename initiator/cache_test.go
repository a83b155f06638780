package initiator

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCache(t *testing.T) {
	root := t.TempDir()
	for name, files := range map[string][2]string{"sdb": {"write back\n", "1\n"}, "sdc": {"write through\n", "0\n"}} {
		q := filepath.Join(root, "block", name, "queue")
		require.NoError(t, os.MkdirAll(q, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(q, "write_cache"), []byte(files[0]), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(q, "fua"), []byte(files[1]), 0o644))
	}
	c := &Client{sysRoot: root}
	got, err := c.Cache("sdb")
	require.NoError(t, err)
	require.Equal(t, Cache{WriteBack: true, FUA: true}, got)
	got, err = c.Cache("sdc")
	require.NoError(t, err)
	require.Equal(t, Cache{}, got)
	_, err = c.Cache("sdd")
	require.Error(t, err)
}
