package flock

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTryLock: a second open file cannot take the lock until the first is
// closed.
func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		require.NoError(t, err)
		return f
	}
	a, b := open(), open()
	defer b.Close()
	ok, err := TryLock(a)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = TryLock(b)
	require.NoError(t, err)
	require.False(t, ok, "held by a")
	require.NoError(t, a.Close())
	ok, err = TryLock(b)
	require.NoError(t, err)
	require.True(t, ok, "a closed: free")

	c := open()
	require.NoError(t, c.Close())
	_, err = TryLock(c)
	require.Error(t, err, "closed file")
}
