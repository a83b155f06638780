package plantest

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/lunferry/lunferry/plan"
)

// Inventory is every object the fake kernel holds, copied.
type Inventory struct {
	// Devices are the dm devices by name.
	Devices map[string]Device
	// Exports are the LIO targets by IQN.
	Exports map[string]plan.ExportSpec
	// Sessions are the proxy's iSCSI sessions ("portal,iqn"), sorted.
	Sessions []string
	// Loops maps a metadata file to its loop device.
	Loops map[string]string
	// Disks maps a disk's path to its LUN key; ReadOnly lists the
	// read-only ones.
	Disks    map[string]string
	ReadOnly map[string]bool
	// Fences are the reservation keys holding LUNs, by LUN key.
	Fences map[string]uint64
}

// Inventory returns what the kernel holds now.
func (k *Kernel) Inventory() Inventory {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.inventory()
}

func (k *Kernel) inventory() Inventory {
	inv := Inventory{Devices: map[string]Device{}, Exports: maps.Clone(k.exports), Loops: maps.Clone(k.loops),
		Disks: maps.Clone(k.disks), ReadOnly: maps.Clone(k.ro), Fences: maps.Clone(k.fences)}
	for n, d := range k.dm {
		inv.Devices[n] = d.copy()
	}
	for s := range k.sessions {
		inv.Sessions = append(inv.Sessions, s)
	}
	sort.Strings(inv.Sessions)
	return inv
}

// crash applies CrashAt to the call just recorded: the process dies at its
// CrashAt-th call, before making it or (CrashAfter) right after, and every
// later call of the dead process fails too, until CrashAt is reset.
func (k *Kernel) crash() error {
	n := len(k.calls)
	if k.CrashAt <= 0 || n < k.CrashAt {
		return nil
	}
	if n == k.CrashAt {
		if k.OnCrash != nil {
			k.OnCrash(k.inventory())
		}
		if k.CrashAfter {
			return nil
		}
	}
	return ErrCrash
}

// Crashed reports whether the process armed with CrashAt has died.
func (k *Kernel) Crashed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.CrashAt > 0 && len(k.calls) >= k.CrashAt
}

// wrote records that op wrote the disk at path, or made it writable
// through a device (see Writes).
func (k *Kernel) wrote(path, op string) {
	if key, ok := k.disks[path]; ok {
		if k.writes == nil {
			k.writes = map[string][]string{}
		}
		k.writes[key] = append(k.writes[key], op)
	}
}

// Writes returns the operations that wrote the LUN key or exposed it to
// writes: clone destination, linear table, zeroing (the fake exports
// only dm devices).
func (k *Kernel) Writes(key string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.writes[key])
}

// audit records what a clone must never see: a source disk that is gone
// or writable. It runs at every call, so it sees the kernel as each call
// left it.
func (k *Kernel) audit() {
	for name, d := range k.dm {
		// A suspended clone reads nothing: rollback's final round makes
		// the old LUN writable before it loads linear over it.
		if d.Clone == nil || d.Suspended {
			continue
		}
		src := d.Clone.Source
		key, ok := k.disks[src]
		switch {
		case !ok:
			k.violate(fmt.Sprintf("clone %s reads %s, which is gone", name, src))
		case !k.ro[src]:
			k.violate(fmt.Sprintf("clone %s reads %s (%s), which is writable", name, src, key))
		}
	}
}

// servedFrom records that the host is served from the dm device node:
// once a clone served it, its metadata says which regions hold the host's
// writes on the destination.
func (k *Kernel) servedFrom(node string) {
	for _, d := range k.dm {
		if d.Node == node && d.Clone != nil {
			if k.hostWrites == nil {
				k.hostWrites = map[string]bool{}
			}
			k.hostWrites[k.metaFile(d.Clone.Metadata)] = true
		}
	}
}

// clearsHostWrites records a violation when metadata that records the
// host's writes is cleared: a clone over it would read those regions from
// the old LUN and hydrate old data over them.
func (k *Kernel) clearsHostWrites(meta string) {
	if k.hostWrites[meta] {
		k.violate(fmt.Sprintf("metadata %s cleared after its clone served the host: the host's writes would be overwritten", meta))
	}
}

func (k *Kernel) violate(s string) {
	if !slices.Contains(k.violations, s) {
		k.violations = append(k.violations, s)
	}
}

// Violations returns what must never happen and did: a clone over a source
// disk gone or writable (audit), the metadata of a clone that served the
// host cleared.
func (k *Kernel) Violations() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.audit()
	return slices.Clone(k.violations)
}

// Clone returns a copy of the fake that shares nothing with it, so that a
// test builds a starting point once and runs many cases from copies. The
// recorded calls and the crash settings (CrashAt, OnCrash) are not copied.
func (k *Kernel) Clone() *Kernel {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := &Kernel{
		LUNs: maps.Clone(k.LUNs), Unreachable: maps.Clone(k.Unreachable), RefuseLogin: maps.Clone(k.RefuseLogin),
		HostLogsIn: k.HostLogsIn, Fail: maps.Clone(k.Fail), HydrationStep: k.HydrationStep,
		LoseUncommitted: k.LoseUncommitted, SwapStopsSuspended: k.SwapStopsSuspended, NoDiscardPassdown: k.NoDiscardPassdown,
		HookFail: maps.Clone(k.HookFail), HookMissing: maps.Clone(k.HookMissing),
		sessions: maps.Clone(k.sessions), disks: maps.Clone(k.disks), ro: maps.Clone(k.ro),
		dm: map[string]*Device{}, exports: maps.Clone(k.exports), loops: maps.Clone(k.loops), nextDev: k.nextDev,
		meta: maps.Clone(k.meta), committed: maps.Clone(k.committed), writes: map[string][]string{}, hostWrites: maps.Clone(k.hostWrites),
		violations: slices.Clone(k.violations), Zeroed: slices.Clone(k.Zeroed), Hooks: slices.Clone(k.Hooks),
		Messages: slices.Clone(k.Messages), CopyBacks: slices.Clone(k.CopyBacks), NoPR: maps.Clone(k.NoPR), NoPRIn: maps.Clone(k.NoPRIn), fences: maps.Clone(k.fences),
	}
	for n, d := range k.dm {
		cp := d.copy()
		c.dm[n] = &cp
	}
	for key, ops := range k.writes {
		c.writes[key] = slices.Clone(ops)
	}
	c.Discards = slices.Clone(k.Discards)
	c.discarded = map[string]map[uint64]bool{}
	for f, rs := range k.discarded {
		c.discarded[f] = maps.Clone(rs)
	}
	c.discardedCommitted = map[string]map[uint64]bool{}
	for f, rs := range k.discardedCommitted {
		c.discardedCommitted[f] = maps.Clone(rs)
	}
	c.eraHist = map[string]*eraHistory{}
	for f, h := range k.eraHist {
		c.eraHist[f] = &eraHistory{era: h.era, written: maps.Clone(h.written)}
	}
	return c
}

// copy returns a copy of d that shares nothing with it.
func (d *Device) copy() Device {
	c := *d
	if d.Clone != nil {
		cl := *d.Clone
		c.Clone = &cl
	}
	if d.Era != nil {
		e := *d.Era
		c.Era = &e
	}
	c.Inactive = slices.Clone(d.Inactive)
	return c
}
