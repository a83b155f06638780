package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/lunferry/lunferry/dm"
)

// kindOps are the kernel operations on one kind of object. Each is
// idempotent and keeps the volume's undo stack (Objects) up to date:
// create and rebuild push the object before the kernel call and mark it
// created after; remove pops it once it is gone.
type kindOps struct {
	// create makes the object for a step (or finds it made).
	create func(p *Planner, ctx context.Context, v *Volume) error
	// rebuild makes a recorded object again after a reboot or crash,
	// keeping what it holds (sessions, hydration progress).
	rebuild func(p *Planner, ctx context.Context, v *Volume) error
	// remove removes the object; all are every volume, for what they share.
	remove func(p *Planner, ctx context.Context, v *Volume, o *Object, all []*Volume) error
	// present reports whether the kernel still holds the object as
	// recorded.
	present func(p *Planner, ctx context.Context, v *Volume, o *Object) (bool, error)
}

// kinds holds the operations of every object kind.
var kinds = map[ObjectKind]kindOps{
	ObjNewLogin: {create: attachNew, rebuild: attachNew, remove: (*Planner).logout, present: (*Planner).hasSession},
	ObjOldLogin: {create: attachOld, rebuild: attachOld, remove: (*Planner).logout, present: (*Planner).hasSession},
	ObjMetadata: {create: (*Planner).createMetadata, rebuild: (*Planner).reattachMetadata, remove: (*Planner).removeMetadata,
		present: (*Planner).hasMetadata},
	ObjDevice: {create: (*Planner).createDevice, rebuild: (*Planner).rebuildDevice, remove: (*Planner).removeDevice,
		present: (*Planner).hasDevice},
	ObjExport: {create: (*Planner).ensureExport, rebuild: (*Planner).ensureExport, remove: (*Planner).removeExport,
		present: (*Planner).hasExport},
	ObjEra: {create: (*Planner).ensureEra, rebuild: (*Planner).ensureEra, remove: (*Planner).removeEra,
		present: (*Planner).hasEra},
	ObjFence: {create: (*Planner).createFence, rebuild: (*Planner).createFence, remove: (*Planner).removeFence,
		present: (*Planner).hasFence},
}

// oldLUNNeeded reports whether v still needs an object of kind that serves
// the old LUN: once linear over the new LUN, nothing does, until a
// rollback attaches it again.
func oldLUNNeeded(v *Volume, kind ObjectKind) bool {
	return !v.Linear || v.Rollback != nil || (kind != ObjOldLogin && kind != ObjMetadata && kind != ObjFence)
}

// missing returns the recorded objects of v that the kernel no longer
// holds (a reboot without restore, or removed by hand). Objects whose
// creation was interrupted (Pending) are the step's own to finish.
func (p *Planner) missing(ctx context.Context, v *Volume) ([]ObjectKind, error) {
	if p.o.DryRun {
		return nil, nil
	}
	var gone []ObjectKind
	for i := range v.Objects {
		o := &v.Objects[i]
		// Once linear, nothing needs the old LUN or the metadata (see
		// rebuildAll).
		if o.Pending || !oldLUNNeeded(v, o.Kind) {
			continue
		}
		ok, err := kinds[o.Kind].present(p, ctx, v, o)
		if err != nil {
			return nil, fmt.Errorf("plan: volume %s: look up %s %s: %w", v.Spec.Name, o.Kind, o.Name, err)
		}
		if !ok {
			gone = append(gone, o.Kind)
		}
	}
	return gone, nil
}

// checkPresent refuses a step over objects the kernel no longer holds.
func (p *Planner) checkPresent(ctx context.Context, v *Volume) error {
	gone, err := p.missing(ctx, v)
	if err != nil || len(gone) == 0 {
		return err
	}
	return fmt.Errorf("plan: volume %s: %w: %v recorded in the state but gone from the kernel (the proxy rebooted, or they were removed by hand): run `lunferry restore` to rebuild them, then rerun",
		v.Spec.Name, ErrDrift, gone)
}

// create makes an object of kind for v.
func (p *Planner) create(ctx context.Context, v *Volume, kind ObjectKind) error {
	return kinds[kind].create(p, ctx, v)
}

// remove removes v's object of kind, if recorded, and pops it.
func (p *Planner) remove(ctx context.Context, v *Volume, kind ObjectKind, all []*Volume) error {
	o := v.object(kind)
	if o == nil {
		return nil
	}
	if err := kinds[kind].remove(p, ctx, v, o, all); err != nil {
		return fmt.Errorf("plan: volume %s: remove %s %s: %w", v.Spec.Name, kind, o.Name, err)
	}
	return p.pop(v, kind)
}

// teardown removes every object of v's undo stack, newest first: abort,
// handover and a finished abort at restore all end this way.
func (p *Planner) teardown(ctx context.Context, v *Volume, all []*Volume) error {
	recorded := make([]ObjectKind, 0, len(v.Objects))
	for _, o := range creationOrder(v) {
		recorded = append(recorded, o.Kind)
	}
	for _, kind := range slices.Backward(recorded) {
		if err := p.remove(ctx, v, kind, all); err != nil {
			return err
		}
	}
	return nil
}

// rebuildAll makes every recorded object of v again, oldest first, and
// returns the kinds rebuilt (metadata whose making prepare did not finish
// is left to prepare's rerun). Once the device runs linear over the new LUN
// nothing needs the old LUN or the metadata: a finalize interrupted after
// its swap is finished by its rerun, which removes them, so restore does
// not wait for an old array that may be gone.
func (p *Planner) rebuildAll(ctx context.Context, v *Volume) ([]ObjectKind, error) {
	var rebuilt []ObjectKind
	for _, o := range creationOrder(v) {
		if !oldLUNNeeded(v, o.Kind) {
			continue
		}
		if o.Kind == ObjMetadata && o.Pending {
			// Prepare was interrupted making it: only prepare makes
			// metadata, and its rerun does.
			continue
		}
		if err := kinds[o.Kind].rebuild(p, ctx, v); err != nil {
			return rebuilt, fmt.Errorf("rebuild %s: %w", o.Kind, err)
		}
		rebuilt = append(rebuilt, o.Kind)
	}
	return rebuilt, nil
}

// creationOrder is the order v's objects are built in (and removed in
// reverse): the undo stack's, but for a rollback after finalize, which
// attaches the old LUN again after the device it is to serve: its session
// and fence then go before the device, as at cutover.
func creationOrder(v *Volume) []Object {
	objs := slices.Clone(v.Objects)
	if v.Rollback == nil || v.Rollback.From != StepFinalized {
		return objs
	}
	first := func(o Object) bool { return o.Kind == ObjNewLogin || o.Kind == ObjOldLogin || o.Kind == ObjFence }
	slices.SortStableFunc(objs, func(a, b Object) int {
		switch {
		case first(a) && !first(b):
			return -1
		case first(b) && !first(a):
			return 1
		}
		return 0
	})
	return objs
}

func attachNew(p *Planner, ctx context.Context, v *Volume) error {
	return p.attach(ctx, v, ObjNewLogin)
}
func attachOld(p *Planner, ctx context.Context, v *Volume) error {
	return p.attach(ctx, v, ObjOldLogin)
}

// attach logs in to the target of the old or new LUN (kind ObjOldLogin or
// ObjNewLogin), finds its disk and records it in v; the old LUN's disk is
// also set read-only (read-write in an online cutover's pass-through).
func (p *Planner) attach(ctx context.Context, v *Volume, kind ObjectKind) error {
	l, which, readOnly := v.Spec.New, "new", false
	if kind == ObjOldLogin {
		l, which, readOnly = v.Spec.Old, "old", true
	}
	t := targetOf(l)
	if _, err := p.push(v, kind, t.String()); err != nil {
		return err
	}
	p.logf("volume %s: log in to the %s LUN's target %s", v.Spec.Name, which, t)
	if err := p.o.Ports.Initiator.Login(ctx, t); err != nil {
		return fmt.Errorf("plan: volume %s: log in to %s LUN target %s: %w", v.Spec.Name, which, t, err)
	}
	d, err := p.o.Ports.Initiator.FindDisk(ctx, t, l.LUN)
	if err != nil {
		return fmt.Errorf("plan: volume %s: find %s LUN %d behind %s: %w (is the LUN mapped to this proxy's initiator?)", v.Spec.Name, which, l.LUN, t, err)
	}
	prev := &v.NewDisk
	if kind == ObjOldLogin {
		prev = &v.OldDisk
	}
	if err := p.sameDisk(v, which, l, *prev, d); err != nil {
		return err
	}
	if readOnly {
		if err := p.setOldAccess(ctx, v, d.Path); err != nil {
			return err
		}
		if err := p.checkOld(ctx, v, d); err != nil {
			return err
		}
	}
	*prev = &d
	return p.created(v, kind, d.Path)
}

// setOldAccess sets the old LUN's disk read-only, or read-write in an
// online cutover's pass-through and once rolled back (the host's writes go
// through it).
func (p *Planner) setOldAccess(ctx context.Context, v *Volume, disk string) error {
	if v.passthrough() || v.rolledBack() {
		if err := p.o.Ports.Fencer.SetReadWrite(ctx, disk); err != nil {
			return fmt.Errorf("plan: volume %s: set old LUN %s read-write for the host's writes: %w", v.Spec.Name, disk, err)
		}
		return nil
	}
	if err := p.o.Ports.Initiator.SetReadOnly(ctx, disk); err != nil {
		return fmt.Errorf("plan: volume %s: set old LUN %s read-only: %w", v.Spec.Name, disk, err)
	}
	return nil
}

// checkOld reads (or checks) the old LUN's identity and, at prepare and
// cutover, its reservations.
func (p *Planner) checkOld(ctx context.Context, v *Volume, d Disk) error {
	if err := p.recordOldIdentity(ctx, v, d); err != nil {
		return err
	}
	if v.Step == StepPreparing || v.Step == StepCuttingOver {
		return p.checkReservations(ctx, v, d)
	}
	return nil
}

// sameDisk refuses a disk found for a LUN that is not the one recorded at
// its first attach: device names move across reboots, and a remapped LUN
// number on an array would otherwise be read, or written, in its place.
// Unknown identities (dry runs, disks without VPD pages) are not compared.
func (p *Planner) sameDisk(v *Volume, which string, l LUN, was *Disk, now Disk) error {
	if was == nil || p.o.DryRun {
		return nil
	}
	idChanged := was.ID != "" && now.ID != was.ID
	sizeChanged := was.SizeBytes != 0 && now.SizeBytes != was.SizeBytes
	if !idChanged && !sizeChanged {
		return nil
	}
	return fmt.Errorf("plan: volume %s: %w: the %s LUN %s %s lun %d is now %s (id %q, %d bytes) but was id %q, %d bytes when first attached: "+
		"a different LUN is mapped to this proxy; fix the mapping on the array, then rerun, or abort",
		v.Spec.Name, ErrDiskChanged, which, l.Portal, l.IQN, l.LUN, now.Path, now.ID, now.SizeBytes, was.ID, was.SizeBytes)
}

// logout ends the session of a login object, unless another volume's live
// objects use the same target.
func (p *Planner) logout(ctx context.Context, v *Volume, o *Object, all []*Volume) error {
	l := v.Spec.Old
	if o.Kind == ObjNewLogin {
		l = v.Spec.New
	}
	if user := sharedLogin(v, o.Kind, l, all); user != "" {
		p.logf("volume %s: keep session %s, %s uses it too", v.Spec.Name, o.Name, user)
		return nil
	}
	p.logf("volume %s: log out of %s", v.Spec.Name, o.Name)
	return p.o.Ports.Initiator.Logout(ctx, targetOf(l))
}

// sharedLogin says who else holds a session to l's target, which v's
// login of kind is about to let go: a session is one per (portal, target),
// whatever LUNs it carries, so it is shared across roles (old and new LUN
// of one volume behind the same target) and across volumes, and is logged
// out only by the last user.
func sharedLogin(v *Volume, kind ObjectKind, l LUN, all []*Volume) string {
	for _, o := range append([]*Volume{v}, all...) {
		for _, ob := range o.Objects {
			if o.Spec.Name == v.Spec.Name && ob.Kind == kind {
				continue
			}
			if (ob.Kind == ObjOldLogin && sameTarget(o.Spec.Old, l)) || (ob.Kind == ObjNewLogin && sameTarget(o.Spec.New, l)) {
				if o.Spec.Name == v.Spec.Name {
					return "its " + map[ObjectKind]string{ObjOldLogin: "old", ObjNewLogin: "new"}[ob.Kind] + " LUN"
				}
				return "volume " + o.Spec.Name
			}
		}
	}
	return ""
}

// createMetadata makes fresh dm-clone metadata: the admin's device, or a
// file allocated in full under the state directory on a loop device; its
// first 4 KiB are zeroed either way.
func (p *Planner) createMetadata(ctx context.Context, v *Volume) error {
	s := &v.Spec
	if dev := s.Metadata.Device; dev != "" {
		if _, err := p.push(v, ObjMetadata, dev); err != nil {
			return err
		}
		p.logf("volume %s: zeroing the first 4 KiB of metadata device %s", s.Name, dev)
		if err := p.o.Ports.Metadata.ZeroDevice(ctx, dev, MinMetadataBytes(v.NewDisk.SizeBytes, s.RegionSectors)); err != nil {
			return fmt.Errorf("plan: volume %s: zero metadata device %s: %w", s.Name, dev, err)
		}
		return p.created(v, ObjMetadata, dev)
	}
	path := p.metadataPath(s.Name)
	size := MetadataBytes(v.NewDisk.SizeBytes, s.RegionSectors)
	v.MetadataFile, v.MetadataBytes = path, size
	if _, err := p.push(v, ObjMetadata, path); err != nil {
		return err
	}
	p.logf("volume %s: metadata %s (%s) on a loop device", s.Name, path, Bytes(size))
	dev, err := p.o.Ports.Metadata.CreateFile(ctx, path, size)
	if err != nil {
		return fmt.Errorf("plan: volume %s: create metadata device %s: %w", s.Name, path, err)
	}
	return p.created(v, ObjMetadata, dev)
}

// reattachMetadata puts the metadata file back on a loop device, never
// created, extended or zeroed: dm-clone keeps hydration progress there. A
// device the admin gave is there by itself. Either way the metadata must
// be the volume's (see checkMetadata).
func (p *Planner) reattachMetadata(ctx context.Context, v *Volume) error {
	dev := v.Spec.Metadata.Device
	if v.MetadataFile != "" {
		var err error
		if dev, err = p.o.Ports.Metadata.AttachFile(ctx, v.MetadataFile, v.MetadataBytes); err != nil {
			return fmt.Errorf("plan: volume %s: %w", v.Spec.Name, err)
		}
	}
	if err := p.checkMetadata(ctx, v, dev); err != nil {
		return err
	}
	return p.created(v, ObjMetadata, dev)
}

// checkMetadata refuses metadata that is not the volume's hydration
// record. Once the clone was built over it, it must hold dm-clone's
// superblock for this volume's region size and length: zeroes would make
// dm-clone start over, serve the host's post-cutover writes from the old
// LUN and copy old data over them. Before that, zeroes are what prepare
// left.
func (p *Planner) checkMetadata(ctx context.Context, v *Volume, dev string) error {
	if p.o.DryRun {
		return nil
	}
	d := v.object(ObjDevice)
	// An online pass-through's device is linear over the old LUN: its
	// metadata is still what prepare left.
	built := v.Exported || (d != nil && !d.Pending && !v.passthrough())
	where := dev
	if v.MetadataFile != "" {
		where = v.MetadataFile
	}
	sb, err := p.o.Ports.Metadata.Superblock(ctx, dev)
	switch {
	case errors.Is(err, dm.ErrNoCloneSuperblock) && !built:
		return nil
	case err != nil:
		return fmt.Errorf("plan: volume %s: %w: %s: %v: the hydration record is gone; a clone over it would overwrite the host's writes with old data. "+
			"Restore the file from a backup, or abort the volume (the host's writes since cutover are on the new LUN only)", v.Spec.Name, ErrMetadataLost, where, err)
	case uint64(sb.RegionSize) != v.Spec.RegionSectors || uint64(sb.TargetSize) != v.SizeSectors:
		return fmt.Errorf("plan: volume %s: %w: %s holds the metadata of another clone (region %d sectors, length %d sectors; this volume: %d, %d)",
			v.Spec.Name, ErrMetadataLost, where, sb.RegionSize, sb.TargetSize, v.Spec.RegionSectors, v.SizeSectors)
	}
	return nil
}

// removeMetadata detaches and deletes the metadata file lunferry made; a
// device the admin gave is left as it is.
func (p *Planner) removeMetadata(ctx context.Context, v *Volume, _ *Object, _ []*Volume) error {
	if v.MetadataFile == "" {
		return nil
	}
	p.logf("volume %s: detach and delete metadata %s", v.Spec.Name, v.MetadataFile)
	return p.o.Ports.Metadata.DetachFile(ctx, v.MetadataFile, true)
}

// createDevice creates the clone device (hydration off) or, after
// finalize, the linear device, and records its node.
func (p *Planner) createDevice(ctx context.Context, v *Volume) error {
	name := DMName(v.Spec.Name)
	if _, err := p.push(v, ObjDevice, name); err != nil {
		return err
	}
	if dev, ok, err := p.o.Ports.Mapper.Lookup(ctx, name); err != nil {
		return fmt.Errorf("plan: look up device %s: %w", name, err)
	} else if ok {
		if err := p.reconcileDevice(ctx, v); err != nil {
			return err
		}
		return p.created(v, ObjDevice, dev)
	}
	dev, err := p.newDevice(ctx, v, name)
	if err != nil {
		return err
	}
	return p.created(v, ObjDevice, dev)
}

// newDevice creates dm device name: linear over the new LUN after the
// swap of finalize, linear over the old LUN in an online cutover's
// pass-through, clone of the old LUN onto the new one otherwise.
func (p *Planner) newDevice(ctx context.Context, v *Volume, name string) (dev string, err error) {
	if disk := v.NewDisk; v.Linear || v.passthrough() || v.rolledBack() {
		if !v.Linear || v.rolledBack() {
			disk = v.OldDisk
		}
		p.logf("volume %s: create %s: %s", v.Spec.Name, name, LinearLine(v.SizeSectors, disk.Path))
		dev, err = p.o.Ports.Mapper.CreateLinear(ctx, name, v.SizeSectors, disk.Path)
	} else {
		meta := v.object(ObjMetadata)
		if meta == nil || meta.Device == "" {
			return "", fmt.Errorf("plan: volume %s: no metadata device recorded: abort and prepare again", v.Spec.Name)
		}
		c := cloneOf(v, meta.Device)
		p.logf("volume %s: create %s: %s", v.Spec.Name, name, CloneLine(v.SizeSectors, c))
		dev, err = p.o.Ports.Mapper.CreateClone(ctx, name, v.SizeSectors, c)
	}
	if err != nil {
		return "", fmt.Errorf("plan: volume %s: create device %s: %w", v.Spec.Name, name, err)
	}
	return dev, nil
}

// rebuildDevice is createDevice once the disks it needs are recorded.
func (p *Planner) rebuildDevice(ctx context.Context, v *Volume) error {
	if v.NewDisk == nil || ((!v.Linear || v.rolledBack()) && v.OldDisk == nil) {
		return fmt.Errorf("plan: volume %s: disks not recorded, cannot rebuild the device", v.Spec.Name)
	}
	return p.createDevice(ctx, v)
}

func (p *Planner) removeDevice(ctx context.Context, v *Volume, o *Object, _ []*Volume) error {
	p.logf("volume %s: remove device %s", v.Spec.Name, o.Name)
	return p.o.Ports.Mapper.Remove(ctx, o.Name)
}

// ensureExport exports the volume's device through LIO to the host only,
// or completes a partial export.
func (p *Planner) ensureExport(ctx context.Context, v *Volume) error {
	if _, err := p.push(v, ObjExport, v.Spec.Export.IQN); err != nil {
		return err
	}
	dev := exportDevice(v)
	e := exportSpec(v, dev)
	p.logf("volume %s: export %s as %s on %v to %s only", v.Spec.Name, dev, e.IQN, e.Portals, e.HostIQN)
	if err := p.o.Ports.Exporter.Apply(ctx, e); err != nil {
		return fmt.Errorf("plan: volume %s: export %s: %w", v.Spec.Name, e.IQN, err)
	}
	// In an online pass-through the host's writes go to the old LUN.
	v.Exported = v.Exported || !v.passthrough()
	return p.created(v, ObjExport, "")
}

func exportSpec(v *Volume, dev string) ExportSpec {
	e := ExportSpec{IQN: v.Spec.Export.IQN, Portals: v.Spec.Export.Portals, StorageName: DMName(v.Spec.Name),
		Device: dev, HostIQN: v.Spec.HostIQN, CHAP: v.Spec.Export.CHAP}
	if h := v.HostIdentity; h != nil {
		e.WWN, e.BlockSize = h.Export.WWN, h.Export.BlockSize
		e.EmulateTPU, e.EmulateTPWS = h.Export.EmulateTPU, h.Export.EmulateTPWS
	}
	// The host logged in to an online export with the old LUN's FUA
	// beside its direct paths, and keeps what it read: so does the
	// export, through every restore.
	e.NoFUA = v.Cutover != nil && v.Cutover.Online && v.OldDisk != nil && !v.OldDisk.FUA
	return e
}

func (p *Planner) hasSession(ctx context.Context, v *Volume, o *Object) (bool, error) {
	l := v.Spec.New
	if o.Kind == ObjOldLogin {
		l = v.Spec.Old
	}
	return p.o.Ports.Initiator.HasSession(ctx, targetOf(l))
}

// hasMetadata: the file on its recorded loop device; a device the admin
// gave is not lunferry's to look after.
func (p *Planner) hasMetadata(ctx context.Context, v *Volume, o *Object) (bool, error) {
	if v.MetadataFile == "" {
		return true, nil
	}
	dev, ok, err := p.o.Ports.Metadata.Attached(ctx, v.MetadataFile)
	return ok && dev == o.Device, err
}

func (p *Planner) hasDevice(ctx context.Context, v *Volume, o *Object) (bool, error) {
	_, ok, err := p.o.Ports.Mapper.Lookup(ctx, o.Name)
	return ok, err
}

func (p *Planner) hasExport(ctx context.Context, v *Volume, o *Object) (bool, error) {
	return p.o.Ports.Exporter.Serving(ctx, v.Spec.Export.IQN, DMName(v.Spec.Name), exportDevice(v), v.Spec.HostIQN)
}

func (p *Planner) removeExport(ctx context.Context, v *Volume, o *Object, _ []*Volume) error {
	p.logf("volume %s: tear down export %s", v.Spec.Name, o.Name)
	return p.o.Ports.Exporter.Teardown(ctx, v.Spec.Export.IQN, DMName(v.Spec.Name))
}
