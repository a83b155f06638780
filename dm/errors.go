package dm

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors callers branch on with errors.Is. The kernel's errno stays
// in the chain too, so errors.Is(err, unix.EBUSY) works as well.
var (
	// ErrExists: a device with this name or UUID already exists (EBUSY on create).
	ErrExists = errors.New("device already exists")
	// ErrNotFound: no device with this name (ENXIO).
	ErrNotFound = errors.New("no such device")
	// ErrBusy: the device is open (mounted, exported by LIO, held by another
	// dm device) and cannot be removed or changed now (EBUSY).
	ErrBusy = errors.New("device is busy")
	// ErrNotOwned: the device's name or UUID lacks lunferry's prefix; lunferry
	// refuses to touch it unless forced.
	ErrNotOwned = errors.New("device was not created by lunferry")
	// ErrInvalidTable: a table or target failed validation before it reached
	// the kernel.
	ErrInvalidTable = errors.New("invalid table")
	// ErrNotImplemented is returned on platforms without device-mapper.
	ErrNotImplemented = errors.New("device-mapper is only available on linux")
)

// TargetMissingError reports a target type the running kernel does not
// provide, with the module that would provide it.
type TargetMissingError struct {
	// Type is the target type name, e.g. "clone".
	Type string
	// Module is the kernel module that provides it, e.g. "dm_clone"; empty
	// for targets built into dm_mod.
	Module string
}

// Error tells the admin which module to load.
func (e *TargetMissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dm: target type %q is not available in the running kernel", e.Type)
	if e.Module == "" {
		b.WriteString(": it is part of dm_mod; load it with \"modprobe dm_mod\"")
		return b.String()
	}
	fmt.Fprintf(&b, ": load it with \"modprobe %s\"", e.Module)
	if e.Type == "clone" {
		b.WriteString(" (Debian's kernels are built without CONFIG_DM_CLONE and do not ship dm-clone.ko: " +
			"build it out of tree from the kernel source's drivers/md/dm-clone*.c for this exact kernel version and insmod it " +
			"after dm_persistent_data and dm_bio_prison)")
	}
	return b.String()
}

// moduleFor names the kernel module that registers a target type.
func moduleFor(targetType string) string {
	switch targetType {
	case "linear", "error", "striped", "zero":
		return ""
	case "snapshot", "snapshot-origin", "snapshot-merge":
		return "dm_snapshot"
	case "thin", "thin-pool":
		return "dm_thin_pool"
	case "mirror":
		return "dm_mirror"
	}
	return "dm_" + strings.ReplaceAll(targetType, "-", "_")
}

// TableRejectedError reports a table the kernel refused to load; the kernel
// logs its reason (the target constructor's error) to the kernel log.
type TableRejectedError struct {
	// Name is the device the table was loaded into.
	Name string
	// Table is the rendered table, one "start length type args" line per
	// target, exactly as sent.
	Table string
	// Err is the kernel's errno.
	Err error
}

// Error includes the table so the admin can retry it by hand with dmsetup.
func (e *TableRejectedError) Error() string {
	return fmt.Sprintf("dm: kernel rejected table for %s: %q: %v (the target's reason is in the kernel log: dmesg | grep device-mapper)",
		e.Name, strings.TrimRight(e.Table, "\n"), e.Err)
}

// Unwrap returns the kernel errno.
func (e *TableRejectedError) Unwrap() error { return e.Err }

// StepError reports which step of a multi-step operation (Create, Replace)
// failed and what state the device was left in.
type StepError struct {
	// Op is the operation, e.g. "replace".
	Op string
	// Name is the device.
	Name string
	// Step is the failed step: "load", "suspend", "resume".
	Step string
	// State says what the device is doing now, for the admin.
	State string
	// Err is the step's error.
	Err error
}

// Error names the operation, the failed step and the device's state.
func (e *StepError) Error() string {
	return fmt.Sprintf("dm: %s %s: %s failed: %v; %s", e.Op, e.Name, e.Step, e.Err, e.State)
}

// Unwrap returns the step's error.
func (e *StepError) Unwrap() error { return e.Err }
