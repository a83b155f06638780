package plantest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
)

// devNumber is a fake "major:minor" for a device path, stable across
// reboots (as a path is not on a real kernel, which the tests that need it
// say).
func devNumber(path string) string {
	h := fnv.New32a()
	h.Write([]byte(path))
	major := 8
	switch {
	case strings.HasPrefix(path, "/dev/loop"):
		major = 7
	case strings.HasPrefix(path, "/dev/dm-"):
		major = 253
	}
	return fmt.Sprintf("%d:%d", major, h.Sum32()%4096)
}

func linearRaw(sectors uint64, dev string) dm.RawLine {
	return dm.RawLine{Length: dm.Sectors(sectors), Type: "linear", Params: devNumber(dev) + " 0"}
}

// active renders a device's live table as the kernel reports it.
func (d *Device) active() []dm.RawLine {
	switch {
	case d.Clone != nil:
		c := *d.Clone
		c.Metadata, c.Destination, c.Source = devNumber(c.Metadata), devNumber(c.Destination), devNumber(c.Source)
		return []dm.RawLine{{Length: dm.Sectors(d.Sectors), Type: "clone", Params: c.Args()}}
	case d.Linear != "":
		return []dm.RawLine{linearRaw(d.Sectors, d.Linear)}
	case d.Era != nil:
		e := *d.Era
		e.Metadata, e.Origin = devNumber(e.Metadata), devNumber(e.Origin)
		return []dm.RawLine{{Length: dm.Sectors(d.Sectors), Type: "era", Params: e.Args()}}
	}
	f := strings.Fields(d.Table)
	return []dm.RawLine{{Type: f[len(f)-1]}}
}

// format writes dm-clone's superblock into a clone's metadata file, as
// loading the first clone table over zeroed metadata does.
func (k *Kernel) format(c dm.Clone, sectors uint64) error {
	path := k.metaFile(c.Metadata)
	if path == c.Metadata {
		return nil // an admin's device: nothing to write in the fake
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("metadata %s: %w", c.Metadata, err)
	}
	defer f.Close()
	b := make([]byte, dm.CloneSuperblockSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return err
	}
	if _, err := dm.ParseCloneSuperblock(b); !errors.Is(err, dm.ErrNoCloneSuperblock) {
		return err // formatted already (nil), or not clone metadata
	}
	le := binary.LittleEndian
	le.PutUint64(b[32:], 0x8af27f64)
	le.PutUint32(b[40:], 1)
	le.PutUint64(b[172:], uint64(c.RegionSize))
	le.PutUint64(b[180:], sectors)
	_, err = f.WriteAt(b, 0)
	return err
}

// attach puts a file on a fake loop device (or finds it there).
func (k *Kernel) attach(path string) string {
	if d, ok := k.loops[path]; ok {
		return d
	}
	d := fmt.Sprintf("/dev/loop%d", len(k.loops))
	k.loops[path] = d
	return d
}

// HasSession implements plan.Initiator.
func (k *Kernel) HasSession(ctx context.Context, t plan.Target) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("HasSession", t.String()); err != nil {
		return false, err
	}
	return k.sessions[t.String()], nil
}

// SessionState implements plan.Initiator: a session logged in with the
// timeouts of its login, FAILED while its portal is in SessionDown.
func (k *Kernel) SessionState(ctx context.Context, t plan.Target) (initiator.Session, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("SessionState", t.String()); err != nil {
		return initiator.Session{}, false, err
	}
	if !k.sessions[t.String()] {
		return initiator.Session{}, false, nil
	}
	to := k.timeouts[t.String()]
	s := initiator.Session{TargetIQN: t.IQN, State: initiator.SessionLoggedIn, RecoveryTimeout: to.ReplacementTimeout,
		NoopOutInterval: to.NoopOutInterval, NoopOutTimeout: to.NoopOutTimeout}
	if k.SessionDown[t.Portal] {
		s.State = "FAILED"
	}
	return s, true, nil
}

// suspended commits a clone's progress to its metadata, as dm-clone does
// when its device is suspended (a table swap, a removal): a linear table
// swapped in, or no device at all, keeps it there across a reboot.
func (k *Kernel) suspended(d *Device) {
	if d.Clone == nil {
		return
	}
	f := k.metaFile(d.Clone.Metadata)
	if k.committed == nil {
		k.committed = map[string]uint64{}
	}
	k.progress()[f], k.committed[f] = d.Hydrated, d.Hydrated
}

// TargetAvailable implements plan.Mapper: every target but MissingTargets.
func (k *Kernel) TargetAvailable(ctx context.Context, name string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("TargetAvailable", name); err != nil {
		return false, err
	}
	return !slices.Contains(k.MissingTargets, name), nil
}

// IOCounters implements plan.Mapper: the device's counters in IO.
func (k *Kernel) IOCounters(ctx context.Context, name string) (dm.IOCounters, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("IOCounters", name); err != nil {
		return dm.IOCounters{}, err
	}
	if _, ok := k.dm[name]; !ok {
		return dm.IOCounters{}, fmt.Errorf("no device %s", name)
	}
	return k.IO[name], nil
}

// CommitStatus implements plan.Mapper: CloneStatus that also commits the
// progress (see LoseUncommitted).
func (k *Kernel) CommitStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	st, err := k.CloneStatus(ctx, name)
	if err != nil {
		return st, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if d, ok := k.dm[name]; ok && d.Clone != nil {
		if k.committed == nil {
			k.committed = map[string]uint64{}
		}
		f := k.metaFile(d.Clone.Metadata)
		k.committed[f] = st.HydratedRegions
		if k.discardedCommitted == nil {
			k.discardedCommitted = map[string]map[uint64]bool{}
		}
		k.discardedCommitted[f] = maps.Clone(k.discarded[f])
	}
	return st, nil
}

// Inspect implements plan.Mapper.
func (k *Kernel) Inspect(ctx context.Context, name string) (plan.DeviceState, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Inspect", name); err != nil {
		return plan.DeviceState{}, false, err
	}
	d, ok := k.dm[name]
	if !ok {
		return plan.DeviceState{}, false, nil
	}
	return plan.DeviceState{Node: d.Node, Suspended: d.Suspended, Active: d.active(), Inactive: d.Inactive}, true, nil
}

// Resume implements plan.Mapper: a loaded linear table becomes live.
func (k *Kernel) Resume(ctx context.Context, name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Resume", name); err != nil {
		return err
	}
	d, ok := k.dm[name]
	if !ok {
		return fmt.Errorf("no device %s", name)
	}
	if d.loaded != nil {
		if err := k.load(name, d, *d.loaded); err != nil {
			return err
		}
	} else if len(d.Inactive) == 1 && d.Inactive[0].Type == "linear" {
		dev := strings.Fields(d.Inactive[0].Params)[0]
		for p := range k.disks {
			if devNumber(p) == dev {
				d.Table, d.Clone, d.Linear = plan.LinearLine(d.Sectors, p).String(), nil, p
				k.wrote(p, "linear "+name)
			}
		}
	}
	d.Suspended, d.Inactive, d.loaded = false, nil, nil
	return nil
}

// SuspendWith leaves a device suspended with a table loaded inactive, as
// something outside lunferry might.
func (k *Kernel) SuspendWith(name string, inactive []dm.RawLine) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dm[name].Suspended, k.dm[name].Inactive = true, inactive
}

// AttachFile implements plan.MetadataDevices.
func (k *Kernel) AttachFile(ctx context.Context, path string, size uint64) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("AttachFile", path, size); err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: metadata file %s: %v", plan.ErrMetadataLost, path, err)
	}
	if uint64(fi.Size()) < size {
		return "", fmt.Errorf("%w: metadata file %s is %d bytes, not %d", plan.ErrMetadataLost, path, fi.Size(), size)
	}
	return k.attach(path), nil
}

// Attached implements plan.MetadataDevices.
func (k *Kernel) Attached(ctx context.Context, path string) (string, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Attached", path); err != nil {
		return "", false, err
	}
	d, ok := k.loops[path]
	return d, ok, nil
}

// Superblock implements plan.MetadataDevices: it reads the metadata file
// behind a fake loop device (an admin's device has a superblock as soon as
// a clone was built over it).
func (k *Kernel) Superblock(ctx context.Context, dev string) (dm.CloneSuperblock, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Superblock", dev); err != nil {
		return dm.CloneSuperblock{}, err
	}
	path := k.metaFile(dev)
	if path == dev {
		return dm.CloneSuperblock{}, dm.ErrNoCloneSuperblock
	}
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return dm.CloneSuperblock{}, err
	}
	defer f.Close()
	b := make([]byte, dm.CloneSuperblockSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return dm.CloneSuperblock{}, err
	}
	return dm.ParseCloneSuperblock(b[:n])
}
