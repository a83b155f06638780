// Package lab plays the parts around the lunferry proxy in the lab VM: the
// SAN arrays (LIO iSCSI targets built with raw configfs writes, deliberately
// independent of lunferry's own lio package, because in production they are
// someone else's hardware), the application host (an open-iscsi iface with
// its own initiator name, a mounted ext4 filesystem and a writer that keeps
// writing and checksumming files) and the checks made at the end (fsck,
// manifest verification).
//
// Everything here runs inside the lab VM as root. The command
// integration/lab/cmd/lunferry-lab exposes it to shell scripts: the cutover
// hooks under integration/lab/hooks and the demo.
package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultConfigFS is LIO's configfs directory.
const DefaultConfigFS = "/sys/kernel/config/target"

// Array is a fake SAN array: one LIO iSCSI target (tpgt_1) with one LUN
// (lun_0) over a backing store, listening on Portals, admitting the
// initiators in ACLs. Its configfs objects are named "labarray-<Name>" so
// they are clearly not lunferry's (lunferry names its objects "lunferry-").
type Array struct {
	// Name is a short role name ("old", "new"); it names the storage object.
	Name string `json:"name"`
	// IQN is the target's name, e.g. iqn.2026-11.io.lunferry.lab:old-array.
	IQN string `json:"iqn"`
	// Portals are the "ip:port" addresses the target listens on.
	Portals []string `json:"portals"`
	// Backing is a block device (iblock backstore) or a regular file
	// (fileio backstore, created or extended to SizeBytes).
	Backing string `json:"backing"`
	// SizeBytes is the LUN size of a file backing store (ignored for block
	// devices, whose size is the LUN's).
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// ACLs are the initiator names admitted, each mapped to LUN 0.
	ACLs []string `json:"acls"`
	// CHAPUser and CHAPPassword, when set, make the target require
	// one-way CHAP from every initiator.
	CHAPUser     string `json:"chapUser,omitempty"`
	CHAPPassword string `json:"chapPassword,omitempty"`
	// CHAPMutualUser and CHAPMutualPassword, when set too, are what the
	// target presents back (mutual CHAP).
	CHAPMutualUser     string `json:"chapMutualUser,omitempty"`
	CHAPMutualPassword string `json:"chapMutualPassword,omitempty"`
	// HBAIndex numbers the configfs HBA directory (<type>_<index>); 0
	// picks one from the name.
	HBAIndex int `json:"hbaIndex,omitempty"`
	// ConfigFS is LIO's configfs directory (empty: DefaultConfigFS).
	ConfigFS string `json:"configfs,omitempty"`
	// Identity is what SetIdentity gave the storage object; Up gives it
	// again to a storage object it creates (after a reboot of the lab).
	Identity *LUNIdentity `json:"identity,omitempty"`
}

func (a *Array) root() string {
	if a.ConfigFS == "" {
		return DefaultConfigFS
	}
	return a.ConfigFS
}

// block reports whether the backing store is a block device.
func (a *Array) block() (bool, error) {
	st, err := os.Stat(a.Backing)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lab: array %s: %w", a.Name, err)
	}
	return st.Mode()&fs.ModeDevice != 0, nil
}

func (a *Array) hbaDir(block bool) string {
	idx := a.HBAIndex
	if idx == 0 {
		idx = 7000
		for _, c := range a.Name + a.IQN {
			idx = (idx*31 + int(c)) % 900000
		}
		idx += 100000
	}
	kind := "fileio"
	if block {
		kind = "iblock"
	}
	return filepath.Join(a.root(), "core", fmt.Sprintf("%s_%d", kind, idx))
}

func (a *Array) soName() string { return "labarray-" + a.Name }
func (a *Array) tpg() string    { return filepath.Join(a.root(), "iscsi", a.IQN, "tpgt_1") }
func (a *Array) lunDir() string { return filepath.Join(a.tpg(), "lun", "lun_0") }
func (a *Array) aclDir(iqn string) string {
	return filepath.Join(a.tpg(), "acls", iqn)
}

func write(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("lab: configfs: write %q to %s: %w", value, path, err)
	}
	return nil
}

func mkdir(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("lab: configfs: %w", err)
	}
	return nil
}

func symlink(target, link string) error {
	if _, err := os.Lstat(link); err == nil {
		return nil
	}
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("lab: configfs: %w", err)
	}
	return nil
}

// Exists reports whether the array's target is configured.
func (a *Array) Exists() bool {
	_, err := os.Stat(filepath.Join(a.root(), "iscsi", a.IQN))
	return err == nil
}

// Up builds the array: backing store, storage object, target, LUN, portals,
// ACLs (and CHAP), then enables the target. It is idempotent: objects
// already there are kept, so it also brings an array back after a reboot of
// the lab VM.
func (a *Array) Up() error {
	if strings.ContainsAny(a.Backing, ",\n") {
		// LIO would take the rest for options and open another file.
		return fmt.Errorf("lab: array %s: backing store %q: LIO's control string cannot carry a comma or newline in a path", a.Name, a.Backing)
	}
	block, err := a.block()
	if err != nil {
		return err
	}
	if !block {
		if a.SizeBytes <= 0 {
			return fmt.Errorf("lab: array %s: file backing store %s needs sizeBytes", a.Name, a.Backing)
		}
		f, err := os.OpenFile(a.Backing, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("lab: array %s: %w", a.Name, err)
		}
		st, err := f.Stat()
		if err == nil && st.Size() < a.SizeBytes {
			err = f.Truncate(a.SizeBytes)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("lab: array %s: size %s: %w", a.Name, a.Backing, err)
		}
	}
	hba := a.hbaDir(block)
	so := filepath.Join(hba, a.soName())
	if err := mkdir(hba); err != nil {
		return err
	}
	if _, err := os.Stat(so); errors.Is(err, fs.ErrNotExist) {
		if err := mkdir(so); err != nil {
			return err
		}
		control := fmt.Sprintf("fd_dev_name=%s,fd_dev_size=%d", a.Backing, a.SizeBytes)
		if block {
			control = "udev_path=" + a.Backing
		}
		if err := write(filepath.Join(so, "control"), control); err != nil {
			return err
		}
		if block {
			if err := write(filepath.Join(so, "udev_path"), a.Backing); err != nil {
				return err
			}
		}
		if err := write(filepath.Join(so, "enable"), "1"); err != nil {
			return err
		}
		if err := a.reapplyIdentity(so); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(a.root(), "iscsi", a.IQN), 0o755); err != nil {
		return fmt.Errorf("lab: configfs: %w", err)
	}
	if err := mkdir(a.tpg()); err != nil {
		return err
	}
	if err := mkdir(a.lunDir()); err != nil {
		return err
	}
	if err := symlink(so, filepath.Join(a.lunDir(), "labarray_so")); err != nil {
		return err
	}
	for _, p := range a.Portals {
		if err := mkdir(filepath.Join(a.tpg(), "np", p)); err != nil {
			return err
		}
	}
	if err := a.SetACLs(a.ACLs...); err != nil {
		return err
	}
	auth := "0"
	if a.CHAPUser != "" {
		auth = "1"
	}
	if err := write(filepath.Join(a.tpg(), "attrib", "authentication"), auth); err != nil {
		return err
	}
	return write(filepath.Join(a.tpg(), "enable"), "1")
}

// SetEnabled enables or disables the array's target portal group.
// Disabled, the array drops every session and refuses logins: it is
// unreachable, as after a path loss, until enabled again.
func (a *Array) SetEnabled(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return write(filepath.Join(a.tpg(), "enable"), v)
}

// ACLList returns the initiators the target admits now.
func (a *Array) ACLList() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(a.tpg(), "acls"))
	if err != nil {
		return nil, fmt.Errorf("lab: array %s: %w", a.Name, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// SetACLs makes exactly iqns the initiators admitted to LUN 0, each with
// the array's CHAP credentials. Removing an ACL ends that initiator's
// sessions (the kernel drops them): this is how the lab "remaps" the old
// LUN from the host to the proxy at cutover.
func (a *Array) SetACLs(iqns ...string) error {
	have, err := a.ACLList()
	if err != nil {
		return err
	}
	for _, iqn := range have {
		if !slices.Contains(iqns, iqn) {
			if err := a.removeACL(iqn); err != nil {
				return err
			}
		}
	}
	for _, iqn := range iqns {
		acl := a.aclDir(iqn)
		if err := mkdir(acl); err != nil {
			return err
		}
		ml := filepath.Join(acl, "lun_0")
		if err := mkdir(ml); err != nil {
			return err
		}
		if err := symlink(a.lunDir(), filepath.Join(ml, "labarray_lun")); err != nil {
			return err
		}
		if err := a.setCHAP(acl); err != nil {
			return err
		}
	}
	a.ACLs = append([]string(nil), iqns...)
	return nil
}

func (a *Array) removeACL(iqn string) error {
	acl := a.aclDir(iqn)
	ml := filepath.Join(acl, "lun_0")
	for _, p := range []string{filepath.Join(ml, "labarray_lun"), ml, acl} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("lab: array %s: remove ACL %s: %w", a.Name, iqn, err)
		}
	}
	return nil
}

// Down removes the array from configfs in the order that leaves it empty
// (target disabled, ACLs, LUN, portals, tpg, target, storage object, HBA).
// The backing store is kept. Missing objects are skipped.
func (a *Array) Down() error {
	var errs []error
	rm := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lab: array %s: %w", a.Name, err))
		}
	}
	tgt := filepath.Join(a.root(), "iscsi", a.IQN)
	if _, err := os.Stat(tgt); err == nil {
		_ = os.WriteFile(filepath.Join(a.tpg(), "enable"), []byte("0"), 0o644)
		acls, _ := os.ReadDir(filepath.Join(a.tpg(), "acls"))
		for _, e := range acls {
			if err := a.removeACL(e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
		rm(filepath.Join(a.lunDir(), "labarray_so"))
		rm(a.lunDir())
		nps, _ := os.ReadDir(filepath.Join(a.tpg(), "np"))
		for _, e := range nps {
			rm(filepath.Join(a.tpg(), "np", e.Name()))
		}
		rm(a.tpg())
		rm(tgt)
	}
	for _, block := range []bool{false, true} {
		hba := a.hbaDir(block)
		rm(filepath.Join(hba, a.soName()))
		rm(hba)
	}
	return errors.Join(errs...)
}

// RandomHBAIndex returns an HBA index unlikely to clash with others'.
func RandomHBAIndex() int { return 100000 + rand.IntN(800000) }

// stripPort drops ":port" from an "ip:port" portal.
func stripPort(p string) string {
	if i := strings.LastIndex(p, ":"); i > 0 {
		return p[:i]
	}
	return p
}
