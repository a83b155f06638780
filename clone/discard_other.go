//go:build !linux

package clone

import (
	"errors"
	"os"
)

// openExclusive is not available off Linux.
func openExclusive(path string) (*os.File, error) {
	return nil, &os.PathError{Op: "open exclusive", Path: path, Err: errors.ErrUnsupported}
}

func blkDiscard(*os.File, uint64, uint64) error { return errors.ErrUnsupported }
