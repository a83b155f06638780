package initiator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// lunID reads the logical unit's identity from its SCSI device directory
// (sysfs .../H:C:T:L, which /sys/block/sdX/device points to): the WWID
// (wwid, from VPD page 0x83) or, for devices without one, "serial." and the
// unit serial number (vpd_pg80: a 4-byte header, then the serial). Empty
// when the device reports neither.
func lunID(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "wwid")); err == nil {
		return strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vpd_pg80")); err == nil && len(b) > 4 {
		if serial := strings.Trim(string(b[4:]), " \x00\n"); serial != "" {
			return "serial." + serial
		}
	}
	return ""
}

// KeepWriteBack makes the SCSI disk dev (sysfs under sysRoot, empty:
// /sys) report a volatile write cache when it reports none, with the sd
// driver's "temporary write back" cache type (no MODE SELECT is sent to
// the device). A disk that reports write back is left alone.
//
// Why: lunferry swaps a clone device, which always advertises a write-back
// cache with FUA (dm-clone sets flush_supported), to a linear table over
// the new LUN's disk, under a host that logged in during the clone phase,
// cached WCE=1 and sends FUA writes and cache flushes. A linear table
// inherits its queue's write cache from the disk below; over a
// write-through disk the device would turn write-through under the host,
// and LIO's iblock backend, which checks the backing queue for every
// command, would reject the host's FUA writes ("Invalid field in CDB": the
// lab saw ext4 abort its journal). Claiming write back over a
// write-through array is safe: flushes and FUA become SYNCHRONIZE CACHE,
// which such an array completes at once.
func KeepWriteBack(sysRoot, dev string) error {
	if sysRoot == "" {
		sysRoot = "/sys"
	}
	name := filepath.Base(dev)
	wcPath := filepath.Join(sysRoot, "block", name, "queue", "write_cache")
	wc, err := os.ReadFile(wcPath)
	if err != nil {
		return fmt.Errorf("initiator: read %s: %w", wcPath, err)
	}
	if strings.TrimSpace(string(wc)) == "write back" {
		return nil
	}
	types, _ := filepath.Glob(filepath.Join(sysRoot, "block", name, "device", "scsi_disk", "*", "cache_type"))
	if len(types) != 1 {
		return fmt.Errorf("initiator: %s reports a write-through cache and is not a SCSI disk whose cache type can be overridden: swapping to linear over it would make the host's FUA writes fail; not swapping", dev)
	}
	if err := os.WriteFile(types[0], []byte("temporary write back"), 0); err != nil {
		return fmt.Errorf("initiator: set %s to temporary write back: %w (swapping to linear over a write-through disk would make the host's FUA writes fail; not swapping)", types[0], err)
	}
	wc, err = os.ReadFile(wcPath)
	if err != nil || strings.TrimSpace(string(wc)) != "write back" {
		return fmt.Errorf("initiator: %s still reports %q after the cache type override; not swapping", dev, strings.TrimSpace(string(wc)))
	}
	return nil
}
