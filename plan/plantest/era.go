package plantest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
)

// eraMagic starts the fake's era metadata once an era device was built
// over it (dm-era writes its superblock then).
const eraMagic = "FAKE-ERA"

// eraHistory is what an era metadata file records: the current era and
// the era each written block was last written in. It is kept by file, so
// it survives reboots and goes with the file.
type eraHistory struct {
	era     uint32
	written map[uint64]uint32
}

// eras is the fake's plan.EraDevices (Create and Superblock clash with
// the Kernel's own methods).
type eras struct{ k *Kernel }

// Eras returns the fake as plan.EraDevices.
func (k *Kernel) Eras() plan.EraDevices { return eras{k} }

// Create implements plan.EraDevices.
func (e eras) Create(ctx context.Context, name string, sectors uint64, t dm.Era) (string, error) {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	line := dm.TableLine{Length: dm.Sectors(sectors), Target: t}
	if err := k.op("CreateEra", name, line.String()); err != nil {
		return "", err
	}
	if d, ok := k.dm[name]; ok {
		return d.Node, nil
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(k.dm)), func(d *Device) bool { return d.Node == t.Origin }) {
		return "", fmt.Errorf("origin %s is no dm device", t.Origin)
	}
	if err := k.formatEra(k.metaFile(t.Metadata), t.Metadata); err != nil {
		return "", err
	}
	k.nextDev++
	c := t
	k.dm[name] = &Device{Node: fmt.Sprintf("/dev/dm-%d", k.nextDev), Table: line.String(), Sectors: sectors, Era: &c}
	return k.dm[name].Node, nil
}

// formatEra starts a fresh history in zeroed metadata, as dm-era does:
// in file, or for an admin's device dev (file == dev) in the fake alone.
func (k *Kernel) formatEra(file, dev string) error {
	if k.eraHist == nil {
		k.eraHist = map[string]*eraHistory{}
	}
	if file == dev {
		if k.eraHist[dev] == nil {
			k.eraHist[dev] = &eraHistory{era: 1, written: map[uint64]uint32{}}
		}
		return nil
	}
	head, err := readHead(file)
	if err != nil {
		return err
	}
	switch {
	case bytes.HasPrefix(head, []byte(eraMagic)):
		if k.eraHist[file] == nil {
			return fmt.Errorf("era metadata %s: history lost by the fake", file)
		}
		return nil
	case !allZero(head):
		return fmt.Errorf("era metadata %s: not dm-era's", file)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(eraMagic), 0); err != nil {
		return err
	}
	k.eraHist[file] = &eraHistory{era: 1, written: map[uint64]uint32{}}
	return nil
}

// Superblock implements plan.EraDevices.
func (e eras) Superblock(ctx context.Context, dev string) error {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("EraSuperblock", dev); err != nil {
		return err
	}
	if k.metaFile(dev) == dev {
		if k.eraHist[dev] == nil {
			return fmt.Errorf("era metadata %s: %w", dev, plan.ErrNoEraSuperblock)
		}
		return nil
	}
	head, err := readHead(k.metaFile(dev))
	switch {
	case err != nil:
		return err
	case allZero(head):
		return fmt.Errorf("era metadata %s: %w", dev, plan.ErrNoEraSuperblock)
	case !bytes.HasPrefix(head, []byte(eraMagic)):
		return fmt.Errorf("era metadata %s: not dm-era's", dev)
	}
	return nil
}

// Checkpoint implements plan.EraDevices.
func (e eras) Checkpoint(ctx context.Context, name string) (uint32, error) {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("EraCheckpoint", name); err != nil {
		return 0, err
	}
	h, _, err := k.history(name)
	if err != nil {
		return 0, err
	}
	h.era++
	return h.era, nil
}

// WrittenSince implements plan.EraDevices.
func (e eras) WrittenSince(ctx context.Context, name, meta string, since uint32) ([]clone.Extent, error) {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("EraWrittenSince", name, since); err != nil {
		return nil, err
	}
	h, d, err := k.history(name)
	if err != nil {
		return nil, err
	}
	if since > h.era {
		return nil, fmt.Errorf("dm: era %s: era %d has not begun (the current era is %d)", name, since, h.era)
	}
	if k.metaFile(meta) != k.metaFile(d.Era.Metadata) {
		return nil, fmt.Errorf("era %s: metadata %s is not its own (%s)", name, meta, d.Era.Metadata)
	}
	bs, size := uint64(d.Era.BlockSize)*512, d.Sectors*512
	var out []clone.Extent
	for b := uint64(0); b*bs < size; b++ {
		if h.written[b] < since {
			continue
		}
		ext := clone.Extent{Offset: b * bs, Length: min(bs, size-b*bs)}
		if n := len(out); n > 0 && out[n-1].End() == ext.Offset {
			out[n-1].Length += ext.Length
		} else {
			out = append(out, ext)
		}
	}
	return out, nil
}

// HostWrite records the host writing length bytes at off through era
// device name: its blocks are marked with the current era.
func (k *Kernel) HostWrite(name string, off, length uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	h, d, err := k.history(name)
	if err != nil {
		panic(err)
	}
	bs := uint64(d.Era.BlockSize) * 512
	for b := off / bs; b*bs < off+length; b++ {
		h.written[b] = h.era
	}
}

// history returns era device name's history and device.
func (k *Kernel) history(name string) (*eraHistory, *Device, error) {
	d, ok := k.dm[name]
	if !ok || d.Era == nil {
		return nil, nil, fmt.Errorf("no era device %s", name)
	}
	h := k.eraHist[k.metaFile(d.Era.Metadata)]
	if h == nil {
		return nil, nil, fmt.Errorf("era %s: no history", name)
	}
	return h, d, nil
}

// holder names the device over node (an era device over its origin).
func (k *Kernel) holder(node string) string {
	for n, d := range k.dm {
		if d.Era != nil && d.Era.Origin == node {
			return n
		}
	}
	return ""
}

func readHead(file string) ([]byte, error) {
	f, err := os.Open(filepath.Clean(file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		err = nil
	}
	return b[:n], err
}

func allZero(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }
