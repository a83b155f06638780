package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PRDir returns the directory where LIO keeps persistent reservation
// state: <dbroot>/pr, dbroot read from configfs. The kernel writes each
// storage object's registrations made with APTPL there, in
// aptpl_<unit serial>; the lab's arrays and the proxy's exports share it
// (one kernel).
func PRDir() (string, error) {
	b, err := os.ReadFile(filepath.Join(DefaultConfigFS, "dbroot"))
	if err != nil {
		return "", fmt.Errorf("lab: LIO dbroot: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(b)), "pr"), nil
}

// PersistPRDir bind-mounts keep (made if missing) on LIO's PRDir, so that
// the reservations LIO keeps through power loss survive a reboot of the
// lab VM, whose / is a RAM overlay: keep must be on a persistent disk
// (a multi-boot test's state disk). A proxy keeps <dbroot>/pr on its own
// disk. The returned func unmounts it.
func PersistPRDir(keep string) (func() error, error) {
	pr, err := PRDir()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{keep, pr} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("lab: persistent reservations: %w", err)
		}
	}
	if out, err := ExecOut("mount", "--bind", keep, pr); err != nil {
		return nil, fmt.Errorf("lab: bind %s on %s: %v: %s", keep, pr, err, out)
	}
	return func() error {
		if out, err := ExecOut("umount", pr); err != nil {
			return fmt.Errorf("lab: unmount %s: %v: %s", pr, err, out)
		}
		return nil
	}, nil
}
