//go:build !linux

package clone

import (
	"errors"
	"os"
)

// openDirect is not available off Linux.
func openDirect(path string) (*os.File, error) {
	return nil, &os.PathError{Op: "open O_DIRECT", Path: path, Err: errors.ErrUnsupported}
}

// openDirectWrite is not available off Linux.
func openDirectWrite(path string) (*os.File, error) {
	return nil, &os.PathError{Op: "open O_DIRECT for writing", Path: path, Err: errors.ErrUnsupported}
}
