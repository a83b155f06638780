package lio

import (
	"context"
	"net/netip"
	"strings"
)

// Restore recreates the objects of c, which must all be lunferry's
// (storage object names with NamePrefix, TPGs with a NamePrefix
// TargetAlias, LUNs exporting only those storage objects): use
// (*SaveConfig).Owned to filter a full targetcli dump first. It is
// idempotent like Apply and, like Apply, removes what it created when it
// fails.
func (r *Root) Restore(ctx context.Context, c *SaveConfig) error {
	if err := r.checkRestore(c); err != nil {
		return err
	}
	t := r.newTx()
	paths := map[string]string{}
	for _, so := range c.StorageObjects {
		p, err := r.ensureStorageObject(ctx, t, soSpec{cfg: so, wwn: WWN{UnitSerial: so.WWN}})
		if err != nil {
			return t.rollback(errf("restore: %w", err))
		}
		paths[so.Path()] = p
	}
	for _, tc := range c.Targets {
		if err := r.applyTarget(ctx, t, tc, paths); err != nil {
			return t.rollback(errf("restore: %w", err))
		}
	}
	return nil
}

// checkRestore refuses, before anything is written, storage objects that
// are not lunferry's, LUNs exporting storage objects c does not hold, and
// portals on addresses this machine does not have.
func (r *Root) checkRestore(c *SaveConfig) error {
	soNames := map[string]bool{}
	for _, so := range c.StorageObjects {
		if err := ValidateStorageObjectName(so.Name); err != nil {
			return errf("restore: %w: %v", ErrNotOwned, err)
		}
		soNames[so.Path()] = true
	}
	for _, tc := range c.Targets {
		for _, g := range tc.TPGs {
			for _, l := range g.LUNs {
				if !soNames[l.StorageObject] {
					return errf("restore: target %s lun %d: %w: storage object %s is not in the configuration", tc.WWN, l.Index, ErrInvalidConfig, l.StorageObject)
				}
			}
			for _, p := range g.Portals {
				a, err := parsePortalAddr(p.IPAddress)
				if err != nil {
					return errf("restore: target %s: %w: portal %q", tc.WWN, ErrInvalidName, p.IPAddress)
				}
				if err := r.checkPortals([]Portal{{Addr: a, Port: p.Port}}); err != nil {
					return errf("restore: target %s: %w", tc.WWN, err)
				}
			}
		}
	}
	return nil
}

// parsePortalAddr parses a saveconfig portal address, IPv6 in brackets.
func parsePortalAddr(s string) (netip.Addr, error) {
	return netip.ParseAddr(strings.Trim(s, "[]"))
}
