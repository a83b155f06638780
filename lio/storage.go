package lio

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Backstore is a storage object kind, named as targetcli names it.
type Backstore string

// The backstores lio drives. Their HBA directories under core/ are
// iblock_N, fileio_N and rd_mcp_N.
const (
	// BackstoreBlock exports a block device (target_core_iblock).
	BackstoreBlock Backstore = "block"
	// BackstoreFileIO exports a file or block device through the page
	// cache or O_DIRECT (target_core_file).
	BackstoreFileIO Backstore = "fileio"
	// BackstoreRamdisk exports memory (target_core_rd, rd_mcp).
	BackstoreRamdisk Backstore = "ramdisk"
)

// hbaPrefix returns the HBA directory prefix of b.
func (b Backstore) hbaPrefix() (string, error) {
	switch b {
	case BackstoreBlock:
		return "iblock", nil
	case BackstoreFileIO:
		return "fileio", nil
	case BackstoreRamdisk:
		return "rd_mcp", nil
	}
	return "", fmt.Errorf("%w: unknown backstore %q (want block, fileio or ramdisk)", ErrInvalidConfig, string(b))
}

func backstoreFromHBA(prefix string) (Backstore, bool) {
	switch prefix {
	case "iblock":
		return BackstoreBlock, true
	case "fileio":
		return BackstoreFileIO, true
	case "rd_mcp":
		return BackstoreRamdisk, true
	}
	return "", false
}

// WWN is the SCSI identity of a storage object (its wwn/ directory). Empty
// fields keep the kernel's value, except UnitSerial, which lio generates
// (a random UUID, as rtslib does) when a storage object is created without
// one. The kernel refuses changes to any of them while the object is
// exported through a LUN.
type WWN struct {
	// UnitSerial is the VPD page 0x80 unit serial (wwn/vpd_unit_serial),
	// at most 253 bytes; initiators build the disk's identity from it.
	UnitSerial string
	// VendorID is the INQUIRY vendor (wwn/vendor_id), at most 8 bytes.
	VendorID string
	// ProductID is the INQUIRY product (wwn/product_id), at most 16 bytes.
	ProductID string
	// Revision is the INQUIRY revision (wwn/revision), at most 4 bytes.
	Revision string
	// CompanyID is the IEEE company id used in NAA identifiers
	// (wwn/company_id), at most 0xFFFFFF; 0 keeps the kernel's.
	CompanyID uint32
}

func (w WWN) validate() error {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"unit serial", w.UnitSerial, 253}, {"vendor id", w.VendorID, 8}, {"product id", w.ProductID, 16}, {"revision", w.Revision, 4}} {
		if len(f.v) > f.max {
			return fmt.Errorf("%w: wwn %s %q is longer than %d bytes", ErrInvalidConfig, f.name, f.v, f.max)
		}
		for _, c := range []byte(f.v) {
			if c < 0x20 || c > 0x7e {
				return fmt.Errorf("%w: wwn %s %q: only printable ASCII is allowed", ErrInvalidConfig, f.name, f.v)
			}
		}
	}
	if w.CompanyID > 0xFFFFFF {
		return fmt.Errorf("%w: wwn company id %#x is larger than 0xffffff", ErrInvalidConfig, w.CompanyID)
	}
	return nil
}

// StorageObject is the desired configuration of one storage object:
// *BlockStorageObject, *FileIOStorageObject or *RamdiskStorageObject.
type StorageObject interface {
	// Backstore returns the storage object's kind.
	Backstore() Backstore
	// ObjectName returns the storage object's name.
	ObjectName() string
	// spec returns the object as lio's internal creation spec.
	spec() soSpec
}

// BlockStorageObject exports a block device through target_core_iblock
// (core/iblock_N/<Name>). Control: udev_path=<Dev>, readonly=<0|1>.
type BlockStorageObject struct {
	// Name must start with NamePrefix.
	Name string
	// Dev is the block device, e.g. /dev/dm-3 (not /dev/mapper/x on
	// machines without udev).
	Dev string
	// ReadOnly makes the kernel refuse writes to the device.
	ReadOnly bool
	// WWN is the SCSI identity.
	WWN WWN
	// Attributes are written to attrib/ (e.g. emulate_tpu=1).
	Attributes map[string]string
}

// Backstore implements StorageObject.
func (o *BlockStorageObject) Backstore() Backstore { return BackstoreBlock }

// ObjectName implements StorageObject.
func (o *BlockStorageObject) ObjectName() string { return o.Name }

func (o *BlockStorageObject) spec() soSpec {
	ro := o.ReadOnly
	return soSpec{cfg: StorageObjectConfig{Name: o.Name, Plugin: string(BackstoreBlock), Dev: o.Dev, ReadOnly: &ro, WWN: o.WWN.UnitSerial, Attributes: Attributes(o.Attributes)}, wwn: o.WWN}
}

// FileIOStorageObject exports a file (or a block device) through
// target_core_file (core/fileio_N/<Name>). Control:
// fd_dev_name=<File>,fd_dev_size=<Size>; the size is required for a
// regular file.
type FileIOStorageObject struct {
	// Name must start with NamePrefix.
	Name string
	// File is the backing file or block device.
	File string
	// Size in bytes of the exported LUN (required for a regular file).
	Size uint64
	// WriteBack turns on the page cache (fd_buffered_io=1) and reports
	// a write cache to initiators. Off by default: a proxy must not
	// acknowledge writes it has not stored.
	WriteBack bool
	// WWN is the SCSI identity.
	WWN WWN
	// Attributes are written to attrib/.
	Attributes map[string]string
}

// Backstore implements StorageObject.
func (o *FileIOStorageObject) Backstore() Backstore { return BackstoreFileIO }

// ObjectName implements StorageObject.
func (o *FileIOStorageObject) ObjectName() string { return o.Name }

func (o *FileIOStorageObject) spec() soSpec {
	wb := o.WriteBack
	c := StorageObjectConfig{Name: o.Name, Plugin: string(BackstoreFileIO), Dev: o.File, WriteBack: &wb, WWN: o.WWN.UnitSerial, Attributes: Attributes(o.Attributes)}
	if o.Size > 0 {
		s := o.Size
		c.Size = &s
	}
	return soSpec{cfg: c, wwn: o.WWN}
}

// RamdiskStorageObject exports memory through target_core_rd
// (core/rd_mcp_N/<Name>). Control: rd_pages=<Size/pagesize>.
type RamdiskStorageObject struct {
	// Name must start with NamePrefix.
	Name string
	// Size in bytes, rounded to pages.
	Size uint64
	// NullIO discards writes and reads zeroes (rd_nullio=1).
	NullIO bool
	// WWN is the SCSI identity.
	WWN WWN
	// Attributes are written to attrib/.
	Attributes map[string]string
}

// Backstore implements StorageObject.
func (o *RamdiskStorageObject) Backstore() Backstore { return BackstoreRamdisk }

// ObjectName implements StorageObject.
func (o *RamdiskStorageObject) ObjectName() string { return o.Name }

func (o *RamdiskStorageObject) spec() soSpec {
	s := o.Size
	return soSpec{cfg: StorageObjectConfig{Name: o.Name, Plugin: string(BackstoreRamdisk), Size: &s, NullIO: o.NullIO, WWN: o.WWN.UnitSerial, Attributes: Attributes(o.Attributes)}, wwn: o.WWN}
}

// soSpec is what lio creates for a storage object: the saveconfig view plus
// the wwn fields saveconfig has no room for.
type soSpec struct {
	cfg StorageObjectConfig
	wwn WWN
}

var storageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)

// ValidateStorageObjectName checks that name can be a storage object name
// lunferry owns: it starts with NamePrefix and holds only letters, digits,
// '-', '_', '.' and ':' (no '/', space or newline, which configfs or
// targetcli cannot handle).
func ValidateStorageObjectName(name string) error {
	if !strings.HasPrefix(name, NamePrefix) {
		return fmt.Errorf("%w: storage object name %q must start with %q: lunferry only manages objects it named", ErrInvalidName, name, NamePrefix)
	}
	if len(name) > 128 || !storageNameRE.MatchString(name) {
		return fmt.Errorf("%w: storage object name %q: use at most 128 letters, digits, '-', '_', '.' or ':'", ErrInvalidName, name)
	}
	return nil
}

func (s soSpec) validate() error {
	c := s.cfg
	if err := ValidateStorageObjectName(c.Name); err != nil {
		return err
	}
	if _, err := Backstore(c.Plugin).hbaPrefix(); err != nil {
		return err
	}
	switch Backstore(c.Plugin) {
	case BackstoreBlock, BackstoreFileIO:
		if c.Dev == "" || !path.IsAbs(c.Dev) {
			return fmt.Errorf("%w: storage object %s: device path %q must be absolute", ErrInvalidConfig, c.Name, c.Dev)
		}
		if strings.ContainsAny(c.Dev, ",\n\t ") {
			return fmt.Errorf("%w: storage object %s: device path %q must not contain commas or white space (the kernel's control file splits on them)", ErrInvalidConfig, c.Name, c.Dev)
		}
	case BackstoreRamdisk:
		if c.Size == nil || *c.Size == 0 {
			return fmt.Errorf("%w: ramdisk storage object %s needs a size", ErrInvalidConfig, c.Name)
		}
	}
	if c.WWN != "" && s.wwn.UnitSerial == "" {
		s.wwn.UnitSerial = c.WWN
	}
	if err := s.wwn.validate(); err != nil {
		return fmt.Errorf("storage object %s: %w", c.Name, err)
	}
	return validateAttrNames(c.Attributes)
}

func validateAttrNames(a map[string]string) error {
	for k, v := range a {
		if k == "" || strings.ContainsAny(k, "/.\n ") {
			return fmt.Errorf("%w: attribute name %q", ErrInvalidConfig, k)
		}
		if strings.ContainsAny(v, "\n") {
			return fmt.Errorf("%w: attribute %s: value must be one line", ErrInvalidConfig, k)
		}
	}
	return nil
}

// StorageObjectInfo describes a storage object found in configfs.
type StorageObjectInfo struct {
	// Backstore is the kind.
	Backstore Backstore
	// Name is the object's name.
	Name string
	// HBA is the HBA directory, e.g. "iblock_3".
	HBA string
	// Path is the absolute configfs directory.
	Path string
	// Dev is udev_path (the device or file).
	Dev string
	// Enabled reports the enable attribute.
	Enabled bool
	// Owned reports whether the name carries NamePrefix.
	Owned bool
}

var hbaRE = regexp.MustCompile(`^([a-z_]+)_([0-9]+)$`)

// StorageObjects lists the block, fileio and ramdisk storage objects in
// configfs, lunferry's and others', sorted by name.
func (r *Root) StorageObjects() ([]StorageObjectInfo, error) {
	hbas, err := r.listDirs(r.corePath())
	if err != nil {
		return nil, errf("list storage objects: %w", err)
	}
	var out []StorageObjectInfo
	for _, h := range hbas {
		m := hbaRE.FindStringSubmatch(h)
		if m == nil {
			continue // core/alua and friends
		}
		b, ok := backstoreFromHBA(m[1])
		if !ok {
			continue // pscsi, user: not lio's business
		}
		names, err := r.listDirs(path.Join(r.corePath(), h))
		if err != nil {
			return nil, errf("list storage objects in %s: %w", h, err)
		}
		for _, n := range names {
			p := path.Join(r.corePath(), h, n)
			info := StorageObjectInfo{Backstore: b, Name: n, HBA: h, Path: p, Owned: strings.HasPrefix(n, NamePrefix)}
			info.Dev, _ = r.readAttr(path.Join(p, "udev_path"))
			en, _ := r.readAttr(path.Join(p, "enable"))
			info.Enabled = en == "1"
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// LookupStorageObject finds the storage object b/name. It returns an error
// wrapping ErrNotFound when there is none.
func (r *Root) LookupStorageObject(b Backstore, name string) (*StorageObjectInfo, error) {
	all, err := r.StorageObjects()
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Backstore == b && all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, errf("storage object %s/%s: %w", b, name, ErrNotFound)
}

// storageObjectByPath finds the storage object whose directory is p.
func (r *Root) storageObjectByPath(p string) (*StorageObjectInfo, error) {
	rel, ok := strings.CutPrefix(p, r.corePath()+"/")
	if !ok {
		return nil, errf("%s is not a storage object", p)
	}
	hba, name, ok := strings.Cut(rel, "/")
	m := hbaRE.FindStringSubmatch(hba)
	if !ok || m == nil || strings.Contains(name, "/") {
		return nil, errf("%s is not a storage object", p)
	}
	b, known := backstoreFromHBA(m[1])
	if !known {
		b = Backstore(m[1])
	}
	return &StorageObjectInfo{Backstore: b, Name: name, HBA: hba, Path: p, Owned: strings.HasPrefix(name, NamePrefix)}, nil
}

// CreateStorageObject creates so if it does not exist, or checks that the
// existing object of that name matches it and brings its wwn and attributes
// up to date. It is idempotent; when it fails it removes what it created.
func (r *Root) CreateStorageObject(ctx context.Context, so StorageObject) error {
	t := r.newTx()
	if _, err := r.ensureStorageObject(ctx, t, so.spec()); err != nil {
		return t.rollback(err)
	}
	return nil
}

// ensureStorageObject makes the storage object of s exist and returns its
// configfs path.
func (r *Root) ensureStorageObject(ctx context.Context, t *tx, s soSpec) (string, error) {
	if err := s.validate(); err != nil {
		return "", err
	}
	if s.wwn.UnitSerial == "" {
		s.wwn.UnitSerial = s.cfg.WWN
	}
	c := s.cfg
	b := Backstore(c.Plugin)
	existing, err := r.LookupStorageObject(b, c.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		existing = nil
	case err != nil:
		return "", err
	}
	if existing != nil && !existing.Enabled {
		// A storage object lunferry named but never enabled is what an
		// interrupted create leaves behind: nothing can use it, recreate.
		if err := r.removeStorageObject(ctx, existing); err != nil {
			return "", err
		}
		existing = nil
	}
	if existing != nil {
		if err := r.checkStorageObject(existing, s); err != nil {
			return "", err
		}
		if err := r.updateWWN(existing.Path, s.wwn, false); err != nil {
			return "", errf("storage object %s: %w", c.Name, err)
		}
		if err := r.updateAttrs(path.Join(existing.Path, "attrib"), c.Attributes); err != nil {
			return "", errf("storage object %s: %w", c.Name, err)
		}
		return existing.Path, nil
	}
	return r.createStorageObject(ctx, t, s)
}

func (r *Root) checkStorageObject(e *StorageObjectInfo, s soSpec) error {
	c := s.cfg
	if (Backstore(c.Plugin) == BackstoreBlock || Backstore(c.Plugin) == BackstoreFileIO) && e.Dev != c.Dev {
		return fmt.Errorf("%w: storage object %s/%s exists on %q, not %q: tear down the export that uses it, or choose another name",
			ErrConflict, e.Backstore, e.Name, e.Dev, c.Dev)
	}
	if Backstore(c.Plugin) == BackstoreBlock {
		if err := r.checkOpenedDevice(e, c.Dev); err != nil {
			return err
		}
	}
	if Backstore(c.Plugin) == BackstoreBlock && c.ReadOnly != nil {
		info, err := r.readAttr(path.Join(e.Path, "info"))
		if err != nil {
			return errf("read %s: %w", r.rel(path.Join(e.Path, "info")), err)
		}
		if ro := infoField(info, "readonly") == "1"; ro != *c.ReadOnly {
			return fmt.Errorf("%w: storage object %s/%s has readonly=%t, want %t: it can only be changed by recreating it (tear down its export first)",
				ErrConflict, e.Backstore, e.Name, ro, *c.ReadOnly)
		}
	}
	return nil
}

// nextHBAIndex returns the lowest HBA index not used by any HBA directory:
// like rtslib, lio gives every storage object an HBA of its own.
func (r *Root) nextHBAIndex() (int, error) {
	hbas, err := r.listDirs(r.corePath())
	if err != nil {
		return 0, errf("list %s: %w", r.corePath(), err)
	}
	used := map[int]bool{}
	for _, h := range hbas {
		if m := hbaRE.FindStringSubmatch(h); m != nil {
			n, _ := strconv.Atoi(m[2])
			used[n] = true
		}
	}
	for i := 0; ; i++ {
		if !used[i] {
			return i, nil
		}
	}
}

// createStorageObject creates the storage object of s in an HBA of its
// own, configures and enables it, and returns its configfs path.
func (r *Root) createStorageObject(ctx context.Context, t *tx, s soSpec) (string, error) {
	c := s.cfg
	b := Backstore(c.Plugin)
	prefix, _ := b.hbaPrefix()
	idx, err := r.nextHBAIndex()
	if err != nil {
		return "", err
	}
	hba := path.Join(r.corePath(), fmt.Sprintf("%s_%d", prefix, idx))
	if err := t.mkdir(ctx, hba); err != nil {
		return "", errf("create hba %s: %w", r.rel(hba), err)
	}
	p := path.Join(hba, c.Name)
	if err := t.mkdir(ctx, p); err != nil {
		return "", errf("create storage object %s/%s: %w", b, c.Name, err)
	}
	if err := r.configureStorageObject(p, c); err != nil {
		return "", err
	}
	if err := r.writeAttr(path.Join(p, "enable"), "1"); err != nil {
		hint := ""
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL) {
			hint = fmt.Sprintf(": check that %s exists and is not in use (no udev: use /dev/dm-N rather than /dev/mapper/NAME)", c.Dev)
		}
		return "", errf("enable storage object %s/%s: %w%s", b, c.Name, err, hint)
	}
	wwn := s.wwn
	if wwn.UnitSerial == "" {
		wwn.UnitSerial = newUnitSerial()
	}
	if err := r.updateWWN(p, wwn, true); err != nil {
		return "", errf("storage object %s: %w", c.Name, err)
	}
	if err := r.updateAttrs(path.Join(p, "attrib"), c.Attributes); err != nil {
		return "", errf("storage object %s: %w", c.Name, err)
	}
	// A host's reservations made with APTPL on a storage object of this
	// unit serial (before a reboot or a rebuild) come back with it.
	if err := r.loadAPTPL(p, wwn.UnitSerial); err != nil {
		return "", errf("storage object %s: %w", c.Name, err)
	}
	return p, nil
}

// configureStorageObject writes the control parameters and udev_path of
// the new storage object at p, before it is enabled, as the kernel
// requires.
func (r *Root) configureStorageObject(p string, c StorageObjectConfig) error {
	if Backstore(c.Plugin) == BackstoreFileIO && c.WriteBack != nil && *c.WriteBack {
		if err := r.writeAttr(path.Join(p, "attrib", "emulate_write_cache"), "1"); err != nil {
			return errf("storage object %s: enable write cache: %w", c.Name, err)
		}
	}
	for _, ctl := range controls(c) {
		if err := r.writeAttr(path.Join(p, "control"), ctl); err != nil {
			return errf("storage object %s: write control %q: %w", c.Name, ctl, err)
		}
	}
	if b := Backstore(c.Plugin); b == BackstoreBlock || b == BackstoreFileIO {
		if err := r.writeAttr(path.Join(p, "udev_path"), c.Dev); err != nil {
			return errf("storage object %s: write udev_path: %w", c.Name, err)
		}
	}
	return nil
}

// controls returns the lines to write to a new storage object's control
// file, one write each.
func controls(c StorageObjectConfig) []string {
	switch Backstore(c.Plugin) {
	case BackstoreBlock:
		ro := c.ReadOnly != nil && *c.ReadOnly
		return []string{"udev_path=" + c.Dev, "readonly=" + boolDigit(ro)}
	case BackstoreFileIO:
		ctl := "fd_dev_name=" + c.Dev
		if c.Size != nil && *c.Size > 0 {
			ctl += ",fd_dev_size=" + strconv.FormatUint(*c.Size, 10)
		}
		out := []string{ctl}
		if c.WriteBack != nil && *c.WriteBack {
			out = append(out, "fd_buffered_io=1")
		}
		if c.AIO != nil && *c.AIO {
			out = append(out, "fd_async_io=1")
		}
		return out
	case BackstoreRamdisk:
		pages := *c.Size / uint64(os.Getpagesize())
		if pages == 0 {
			pages = 1
		}
		out := []string{"rd_pages=" + strconv.FormatUint(pages, 10)}
		if c.NullIO {
			out = append(out, "rd_nullio=1")
		}
		return out
	}
	return nil
}

// updateWWN writes the non-empty fields of w that differ from configfs.
func (r *Root) updateWWN(soPath string, w WWN, fresh bool) error {
	dir := path.Join(soPath, "wwn")
	type field struct{ file, want string }
	fields := []field{
		{"vendor_id", w.VendorID}, {"product_id", w.ProductID}, {"revision", w.Revision},
	}
	if w.CompanyID != 0 {
		fields = append(fields, field{"company_id", fmt.Sprintf("0x%06x", w.CompanyID)})
	}
	fields = append(fields, field{"vpd_unit_serial", w.UnitSerial})
	for _, f := range fields {
		if f.want == "" {
			continue
		}
		if !fresh {
			have, err := r.readAttr(path.Join(dir, f.file))
			if err != nil {
				return errf("read wwn/%s: %w", f.file, err)
			}
			if f.file == "vpd_unit_serial" {
				have = parseUnitSerial(have)
			}
			if have == f.want || f.file == "company_id" && sameHex(have, f.want) {
				continue
			}
		}
		if err := r.writeAttr(path.Join(dir, f.file), f.want); err != nil {
			if errors.Is(err, unix.EINVAL) && !fresh {
				// A LIO restore (targetctl) brings an export back
				// without its INQUIRY strings: a conflict, so that
				// its owner rebuilds it.
				return errf("set wwn/%s to %q: %w: %w (the kernel refuses while the object is exported: tear down the export first)", f.file, f.want, ErrConflict, err)
			}
			return errf("set wwn/%s to %q: %w", f.file, f.want, err)
		}
	}
	return nil
}

// parseUnitSerial extracts the serial from "T10 VPD Unit Serial Number: X".
func parseUnitSerial(s string) string {
	if _, v, ok := strings.Cut(s, ":"); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(s)
}

func sameHex(a, b string) bool {
	x, err1 := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 32)
	y, err2 := strconv.ParseUint(strings.TrimPrefix(b, "0x"), 16, 32)
	return err1 == nil && err2 == nil && x == y
}

// updateAttrs writes the attributes in want whose value differs.
func (r *Root) updateAttrs(dir string, want map[string]string) error {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := path.Join(dir, k)
		have, err := r.readAttr(p)
		if errors.Is(err, fs.ErrNotExist) {
			return errf("%w: no attribute %s in %s (this kernel does not have it)", ErrInvalidConfig, k, r.rel(dir))
		}
		if err == nil && have == want[k] {
			continue
		}
		if err := r.writeAttr(p, want[k]); err != nil {
			return errf("set %s=%s: %w", r.rel(p), want[k], err)
		}
	}
	return nil
}

// DeleteStorageObject removes the lunferry storage object b/name and its HBA
// directory. It refuses objects without NamePrefix (ErrNotOwned) and fails
// with an error wrapping unix.EBUSY while a LUN uses the object. Deleting a
// missing object succeeds.
func (r *Root) DeleteStorageObject(ctx context.Context, b Backstore, name string) error {
	if !strings.HasPrefix(name, NamePrefix) {
		return errf("delete storage object %s/%s: %w: its name does not start with %q; remove it with targetcli if it is no longer needed", b, name, ErrNotOwned, NamePrefix)
	}
	so, err := r.LookupStorageObject(b, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.removeStorageObject(ctx, so)
}

func (r *Root) removeStorageObject(ctx context.Context, so *StorageObjectInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !so.Owned {
		return errf("delete storage object %s/%s: %w", so.Backstore, so.Name, ErrNotOwned)
	}
	if err := r.fs().Rmdir(so.Path); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return errf("delete storage object %s/%s: %w: a LUN still exports it; tear down the target that uses it first", so.Backstore, so.Name, err)
		}
		return errf("delete storage object %s/%s: %w", so.Backstore, so.Name, err)
	}
	// lio gives each storage object its own HBA, so an HBA left empty
	// by removing ours held only ours.
	hba := path.Dir(so.Path)
	if rest, err := r.listDirs(hba); err == nil && len(rest) == 0 {
		if err := r.fs().Rmdir(hba); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			return errf("delete hba %s: %w", r.rel(hba), err)
		}
	}
	return nil
}

// newUnitSerial returns a random UUID (version 4), the form rtslib uses
// for unit serials.
func newUnitSerial() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// infoField extracts "Key: value" from a configfs info file like rtslib's
// _parse_info (regexp ".*Key: ([^: ]+).*", greedy, so the last match
// wins), but only where Key starts a word: fileio's info has both
// "SectorSize: 512" and "Size: <bytes>".
func infoField(info, key string) string {
	flat := " " + strings.Join(strings.Fields(info), " ")
	i := strings.LastIndex(flat, " "+key+": ")
	if i < 0 {
		return ""
	}
	rest := flat[i+len(key)+3:]
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
