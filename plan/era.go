package plan

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
)

// The era layer: a dm-era device over the volume's device (clone, linear
// over the old LUN in an online pass-through, linear over the new LUN
// after finalize), which the export serves. It records in which era each
// block was last written, so that verify (and rollback) know what the host
// wrote since cutover. Swaps replace the table of the device below it, so
// the host's disk never changes; the era device and its history stay until
// handover or abort remove them.

// ErrNoEraSuperblock: the era metadata holds zeroes where dm-era's
// superblock goes (fresh metadata no era device was built over yet).
var ErrNoEraSuperblock = errors.New("no dm-era superblock (zeroes)")

// EraDevices drives dm-era devices; the generic operations (lookup,
// remove, inspect) are the Mapper's.
type EraDevices interface {
	// Create creates name as e over sectors sectors, or finds it, and
	// returns its node.
	Create(ctx context.Context, name string, sectors uint64, e dm.Era) (string, error)
	// Superblock checks that era metadata device dev holds dm-era's
	// superblock: an error wrapping ErrNoEraSuperblock when its first
	// block is zeroes, another when it is something else.
	Superblock(ctx context.Context, dev string) error
	// Checkpoint starts a new era on name and returns the era now
	// current: every write from then on is marked with it or a later one.
	Checkpoint(ctx context.Context, name string) (uint32, error)
	// WrittenSince returns the byte ranges of name's era blocks written
	// in era since or later (sorted, whole blocks, clipped to the
	// device's size), read from a metadata snapshot of its metadata
	// device meta.
	WrittenSince(ctx context.Context, name, meta string, since uint32) ([]clone.Extent, error)
}

// EraState is what the state records of a volume's era layer.
type EraState struct {
	// MetadataFile is the era metadata's backing file (beside the
	// clone's), MetadataBytes its size, MetadataDevice the loop device it
	// was last attached to.
	MetadataFile   string `json:"metadataFile"`
	MetadataBytes  uint64 `json:"metadataBytes"`
	MetadataDevice string `json:"metadataDevice,omitempty"`
	// BlockSectors is the era block size the device was built with.
	BlockSectors uint64 `json:"blockSectors"`
	// Since is the era current when the host's writes began to reach the
	// new LUN only (cutover, or an online cutover's takeover): blocks
	// marked with it or a later era are the host's. 0 until taken.
	Since uint32 `json:"since,omitempty"`
}

// EraName is the dm name of a volume's era device. Volume names have no
// ".", so no volume's own device can take it.
func EraName(volume string) string { return DMName(volume) + ".era" }

// hasEraLayer reports whether v's stack has, or is building, an era layer.
func (v *Volume) hasEraLayer() bool { return v.object(ObjEra) != nil }

// wantsEra reports whether a step building v's stack adds the era layer:
// not when the ports have none, nor to a volume exported before lunferry
// built era layers (its export serves the device itself, and stays so).
func (p *Planner) wantsEra(v *Volume) bool {
	return v.hasEraLayer() || (p.o.Ports.Era != nil && v.object(ObjExport) == nil)
}

// exportDevice is the device the export serves: the era device once
// built, the volume's device otherwise.
func exportDevice(v *Volume) string {
	if e := v.object(ObjEra); e != nil && !e.Pending {
		return e.Device
	}
	if d := v.object(ObjDevice); d != nil {
		return d.Device
	}
	return ""
}

// ensureEra builds the era device over the volume's device, or finds it
// built. Its metadata is made fresh only while the object is pending
// (created at cutover, before the export: no host write can have been
// recorded yet); once built it is only put back on a loop device, and
// refused when missing or not dm-era's (see checkEraMetadata).
func (p *Planner) ensureEra(ctx context.Context, v *Volume) error {
	if p.o.Ports.Era == nil {
		return fmt.Errorf("plan: volume %s: %w: the state records an era layer but this lunferry drives none", v.Spec.Name, ErrStateCorrupt)
	}
	if v.Era == nil {
		block := eraBlockSectors(v.Spec)
		v.Era = &EraState{MetadataFile: p.eraMetadataPath(v.Spec.Name), BlockSectors: block,
			MetadataBytes: EraMetadataBytes(v.SizeSectors*512, block)}
		if dev := v.Spec.Metadata.EraDevice; dev != "" {
			v.Era.MetadataFile, v.Era.MetadataDevice = "", dev
		}
	}
	name := EraName(v.Spec.Name)
	o, err := p.push(v, ObjEra, name)
	if err != nil {
		return err
	}
	fresh := o.Pending
	meta, err := p.eraMetadata(ctx, v, fresh)
	if err != nil {
		return err
	}
	dev, err := p.eraDevice(ctx, v, name, meta)
	if err != nil {
		return err
	}
	if v.Era.Since == 0 && !v.passthrough() {
		if err := p.eraCheckpoint(ctx, v); err != nil {
			return err
		}
	}
	return p.created(v, ObjEra, dev)
}

// eraMetadata puts the era metadata on a loop device: a fresh file when
// fresh and no era device is built over it, the existing one otherwise.
func (p *Planner) eraMetadata(ctx context.Context, v *Volume, fresh bool) (string, error) {
	e, name := v.Era, v.Spec.Name
	_, built, err := p.o.Ports.Mapper.Lookup(ctx, EraName(name))
	if err != nil {
		return "", fmt.Errorf("plan: look up device %s: %w", EraName(name), err)
	}
	if e.MetadataFile == "" {
		return e.MetadataDevice, p.givenEraMetadata(ctx, v, fresh && !built)
	}
	var dev string
	if fresh && !built {
		p.logf("volume %s: era metadata %s (%s) on a loop device", name, e.MetadataFile, Bytes(e.MetadataBytes))
		// A fresh history: an era taken in an earlier one (a cutover
		// killed before it recorded the device) is not this one's.
		e.Since = 0
		dev, err = p.o.Ports.Metadata.CreateFile(ctx, e.MetadataFile, e.MetadataBytes)
	} else {
		dev, err = p.o.Ports.Metadata.AttachFile(ctx, e.MetadataFile, e.MetadataBytes)
	}
	if err != nil {
		return "", fmt.Errorf("plan: volume %s: era metadata %s: %w", name, e.MetadataFile, err)
	}
	if !fresh {
		if err := p.checkEraMetadata(ctx, v, dev); err != nil {
			return "", err
		}
	}
	e.MetadataDevice = dev
	return dev, p.save(v)
}

// givenEraMetadata zeroes the era metadata device the admin gave when
// fresh, and checks it otherwise.
func (p *Planner) givenEraMetadata(ctx context.Context, v *Volume, fresh bool) error {
	e := v.Era
	if !fresh {
		return p.checkEraMetadata(ctx, v, e.MetadataDevice)
	}
	p.logf("volume %s: zeroing the first 4 KiB of era metadata device %s", v.Spec.Name, e.MetadataDevice)
	e.Since = 0
	if err := p.o.Ports.Metadata.ZeroDevice(ctx, e.MetadataDevice, e.MetadataBytes); err != nil {
		return fmt.Errorf("plan: volume %s: zero era metadata device %s: %w", v.Spec.Name, e.MetadataDevice, err)
	}
	return p.save(v)
}

// checkEraMetadata refuses era metadata that is not the volume's record
// of the host's writes: an era device built over zeroes would start a
// history of its own, and verify and rollback would miss every write
// before it.
func (p *Planner) checkEraMetadata(ctx context.Context, v *Volume, dev string) error {
	if p.o.DryRun {
		return nil
	}
	where := v.Era.MetadataFile
	if where == "" {
		where = dev
	}
	if err := p.o.Ports.Era.Superblock(ctx, dev); err != nil {
		return fmt.Errorf("plan: volume %s: %w: era metadata %s: %v: the record of the host's writes since cutover is gone; verify and rollback need it. "+
			"Restore it from a backup, or abort the volume", v.Spec.Name, ErrMetadataLost, where, err)
	}
	return nil
}

// eraDevice creates the era device over the volume's device, or finds it.
func (p *Planner) eraDevice(ctx context.Context, v *Volume, name, meta string) (string, error) {
	if dev, ok, err := p.o.Ports.Mapper.Lookup(ctx, name); err != nil {
		return "", fmt.Errorf("plan: look up device %s: %w", name, err)
	} else if ok {
		return dev, nil
	}
	lower := v.object(ObjDevice)
	if lower == nil || lower.Pending || lower.Device == "" {
		return "", fmt.Errorf("plan: volume %s: %w: no device recorded under the era layer", v.Spec.Name, ErrStateCorrupt)
	}
	e := dm.Era{Metadata: meta, Origin: lower.Device, BlockSize: dm.Sectors(v.Era.BlockSectors)}
	p.logf("volume %s: create %s: %s", v.Spec.Name, name, dm.TableLine{Length: dm.Sectors(v.SizeSectors), Target: e})
	dev, err := p.o.Ports.Era.Create(ctx, name, v.SizeSectors, e)
	if err != nil {
		return "", fmt.Errorf("plan: volume %s: create device %s: %w", v.Spec.Name, name, err)
	}
	return dev, nil
}

// eraCheckpoint starts the era from which the host's writes are on the
// new LUN only, and records it before they can be.
func (p *Planner) eraCheckpoint(ctx context.Context, v *Volume) error {
	era, err := p.o.Ports.Era.Checkpoint(ctx, EraName(v.Spec.Name))
	if err != nil {
		return fmt.Errorf("plan: volume %s: era checkpoint: %w", v.Spec.Name, err)
	}
	p.logf("volume %s: era %d: the host's writes are tracked from here", v.Spec.Name, era)
	v.Era.Since = era
	return p.save(v)
}

// removeEra removes the era device and deletes its metadata.
func (p *Planner) removeEra(ctx context.Context, v *Volume, o *Object, _ []*Volume) error {
	p.logf("volume %s: remove device %s", v.Spec.Name, o.Name)
	if err := p.o.Ports.Mapper.Remove(ctx, o.Name); err != nil {
		return err
	}
	if v.Era == nil || v.Era.MetadataFile == "" {
		return nil // a device the admin gave stays as it is
	}
	p.logf("volume %s: detach and delete era metadata %s", v.Spec.Name, v.Era.MetadataFile)
	return p.o.Ports.Metadata.DetachFile(ctx, v.Era.MetadataFile, true)
}

// hasEra: the era device, and its metadata on its recorded loop device.
func (p *Planner) hasEra(ctx context.Context, v *Volume, o *Object) (bool, error) {
	if _, ok, err := p.o.Ports.Mapper.Lookup(ctx, o.Name); err != nil || !ok {
		return false, err
	}
	if v.Era == nil {
		return false, nil
	}
	if v.Era.MetadataFile == "" {
		return true, nil // a device the admin gave is not lunferry's to look after
	}
	dev, ok, err := p.o.Ports.Metadata.Attached(ctx, v.Era.MetadataFile)
	return ok && dev == v.Era.MetadataDevice, err
}

func (p *Planner) eraMetadataPath(name string) string {
	return filepath.Join(p.store.MetadataDir(), name+".era")
}

// eraBlockSectors is the spec's era block, by default DefaultEraBlockSectors
// or the region when smaller (Validate refuses a larger one).
func eraBlockSectors(s Spec) uint64 {
	if s.EraBlockSectors != 0 {
		return s.EraBlockSectors
	}
	region := s.RegionSectors
	if region == 0 {
		region = DefaultRegionSectors
	}
	return min(DefaultEraBlockSectors, region)
}
