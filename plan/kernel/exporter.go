package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
)

// exporter adapts lio.Root to plan.Exporter.
type exporter struct {
	r *lio.Root
	// owner is the uid that must own secret files (0, root).
	owner int
}

func (e *exporter) Lookup(ctx context.Context, iqn string) (bool, error) {
	return e.r.Target(iqn).Exists()
}

// Serving reads only what serving the host takes (lio's TPG.Serves), not
// the whole target: status asks it of every volume.
func (e *exporter) Serving(ctx context.Context, iqn, storageName, device, hostIQN string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return e.r.Target(iqn).TPG(1).Serves(storageName, device, hostIQN)
}

// LIOExport renders an ExportSpec as lio's desired state: an iblock storage
// object on the device, TPG 1, LUN 0, the portals, one ACL for the host,
// with chap as its credentials (nil: none; the caller reads them from the
// files s.CHAP names).
func LIOExport(s plan.ExportSpec, chap *lio.CHAP) (lio.Export, error) {
	e := lio.Export{Name: s.StorageName, Backstore: lio.BackstoreBlock, Device: s.Device, TargetIQN: s.IQN, TPG: 1,
		LUN: 0, ACLs: []lio.ACL{{InitiatorIQN: s.HostIQN, CHAP: chap}}}
	for _, p := range s.Portals {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return lio.Export{}, fmt.Errorf("plan: export portal %q: want ip:port: %w", p, err)
		}
		e.Portals = append(e.Portals, lio.Portal{Addr: ap.Addr(), Port: ap.Port()})
	}
	e.WWN, e.Attributes = s.WWN, exportAttributes(s)
	return e, nil
}

// exportAttributes returns the attrib/ settings of s's storage object (nil
// when it keeps LIO's defaults): the logical block size and thin
// provisioning the host sees.
func exportAttributes(s plan.ExportSpec) map[string]string {
	a := map[string]string{}
	if s.NoFUA {
		a["emulate_fua_write"] = "0"
	}
	if s.BlockSize != 0 {
		a["block_size"] = strconv.FormatUint(uint64(s.BlockSize), 10)
	}
	if s.EmulateTPU {
		a["emulate_tpu"] = "1"
	}
	if s.EmulateTPWS {
		a["emulate_tpws"] = "1"
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

func (e *exporter) Apply(ctx context.Context, s plan.ExportSpec) error {
	chap, err := e.chap(s.CHAP)
	if err != nil {
		return err
	}
	le, err := LIOExport(s, chap)
	if err != nil {
		return err
	}
	// A cluster host's reservations through the export need it.
	if err := e.r.EnsurePRDir(); err != nil {
		return err
	}
	err = e.r.Apply(ctx, le)
	if !errors.Is(err, lio.ErrConflict) {
		return err
	}
	// lunferry's own export (lio handles only its names) in another shape
	// than it builds: a saved LIO configuration (targetctl restore)
	// brought it back on a /dev/dm-N that is another device now, or a LUN
	// on another storage object. Adopting it could show the host the
	// wrong disk: rebuild it.
	if terr := e.Teardown(ctx, s.IQN, s.StorageName); terr != nil {
		return fmt.Errorf("%w; tearing it down to rebuild it: %w", err, terr)
	}
	return e.r.Apply(ctx, le)
}

// chap reads the export's CHAP secrets from the files c names (nil: no
// CHAP): what the host presents and, mutual, what the proxy presents.
func (e *exporter) chap(c *plan.CHAP) (*lio.CHAP, error) {
	ic, err := loadCHAP(c, e.owner)
	if err != nil || ic == nil {
		return nil, err
	}
	return &lio.CHAP{UserID: ic.Username, Password: ic.Password.Reveal(),
		MutualUserID: ic.MutualUsername, MutualPassword: ic.MutualPassword.Reveal()}, nil
}

func (e *exporter) Teardown(ctx context.Context, iqn, storageName string) error {
	// Force: an abort removes the export under a logged-in host; the
	// post-abort hook moves the host back to the old array. StorageObjects:
	// a teardown interrupted after the target went is finished by a rerun.
	opts := lio.TeardownOptions{Force: true}
	if storageName != "" {
		opts.StorageObjects = []string{storageName}
	}
	return e.r.Teardown(ctx, iqn, opts)
}

func (e *exporter) Sessions(ctx context.Context, iqn string) ([]string, error) {
	ss, err := e.r.Sessions(iqn)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range ss {
		if s.State == "" || s.State == "LOGGED_IN" || strings.Contains(s.State, "LOGGED_IN") {
			out = append(out, s.InitiatorIQN)
		}
	}
	return out, nil
}

func (e *exporter) List(ctx context.Context) ([]string, error) {
	ts, err := e.r.Targets()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		out = append(out, t.IQN)
	}
	return out, nil
}
