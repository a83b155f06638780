package plan

import (
	"errors"
	"fmt"
	"syscall"
)

// stateDirErr adds to err, an error writing the state directory dir, what
// the admin does about a full or read-only filesystem. Every step saves
// its "-ing" record before it touches the kernel, so a step refused here
// changed nothing in the kernel.
func stateDirErr(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: the state directory %s is full: free space on its filesystem (df -h %s), then rerun the command", err, dir, dir)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: the state directory %s is on a read-only filesystem: remount it read-write (mount -o remount,rw; a filesystem also turns read-only after disk errors: check the kernel log), then rerun the command", err, dir)
	}
	return err
}
