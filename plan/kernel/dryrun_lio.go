package kernel

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
)

// dryExporter prints the configfs writes lio would make for an export.
type dryExporter struct{ d *dry }

func (e dryExporter) Lookup(ctx context.Context, iqn string) (bool, error) { return false, nil }

func (e dryExporter) Apply(ctx context.Context, s plan.ExportSpec) error {
	le, err := LIOExport(s)
	if err != nil {
		return err
	}
	rec := &lio.Recorder{DryRun: true, Log: func(op lio.Op) { e.d.printf("configfs: %s", op) }}
	all := lio.StaticAddrs{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	root := lio.NewRoot(lio.Options{ConfigFSRoot: e.d.configfsRoot, FS: rec, Addrs: all})
	err = root.Apply(ctx, le)
	if err == nil {
		return nil
	}
	e.d.printf("configfs not readable here (%v); the export as lio would create it:", err)
	so, _ := json.Marshal(le.StorageObject())
	tc, _ := json.Marshal(le.TargetConfig())
	e.d.printf("configfs: create %s storage object %s on %s: %s", lio.BackstoreBlock, s.StorageName, s.Device, so)
	e.d.printf("configfs: create target %s (tpg 1, lun 0, portals %s, acl %s only): %s", s.IQN,
		strings.Join(s.Portals, " "), s.HostIQN, tc)
	return nil
}

func (e dryExporter) Teardown(ctx context.Context, iqn, storageName string) error {
	e.d.printf("configfs: tear down target %s and storage object %s", iqn, storageName)
	return nil
}

func (e dryExporter) Sessions(ctx context.Context, iqn string) ([]string, error) { return nil, nil }

func (e dryExporter) List(ctx context.Context) ([]string, error) { return nil, nil }
