//go:build !linux

package clone

import (
	"errors"
	"os"
)

// openDirect is not available off Linux: Verify reads buffered.
func openDirect(path string) (*os.File, error) {
	return nil, &os.PathError{Op: "open O_DIRECT", Path: path, Err: errors.ErrUnsupported}
}

// dropCache does nothing off Linux.
func dropCache(*os.File, int64, int64) {}
