package kernel

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
)

// drySecret and dryMutualSecret stand for secrets a dry run does not read
// (two: lio refuses equal secrets both ways).
const (
	drySecret       = "<secret>"
	dryMutualSecret = "<mutual-secret>"
)

// chapFiles names c's secret files: "F" or "F and M (mutual)".
func chapFiles(c *plan.CHAP) string {
	if c.MutualSecretFile == "" {
		return c.SecretFile
	}
	return c.SecretFile + " and " + c.MutualSecretFile + " (mutual)"
}

// dryExporter prints the configfs writes lio would make for an export.
type dryExporter struct{ d *dry }

func (e dryExporter) Lookup(ctx context.Context, iqn string) (bool, error) { return false, nil }

func (e dryExporter) Serving(ctx context.Context, iqn, storageName, device, hostIQN string) (bool, error) {
	return false, nil
}

func (e dryExporter) Apply(ctx context.Context, s plan.ExportSpec) error {
	// A dry run reads no secret: the ACL gets placeholders (lio's
	// Recorder prints every password written as <secret>).
	var chap *lio.CHAP
	if c := s.CHAP; c != nil {
		chap = &lio.CHAP{UserID: c.Username, Password: drySecret}
		if c.MutualUsername != "" {
			chap.MutualUserID, chap.MutualPassword = c.MutualUsername, dryMutualSecret
		}
		e.d.printf("export %s: acl %s with %s: the secrets from %s, never printed", s.IQN, s.HostIQN, chap, chapFiles(c))
	}
	le, err := LIOExport(s, chap)
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
	tc := jsonText(le.TargetConfig())
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

// jsonText renders v as one line of JSON, with "<" and ">" (the secrets'
// placeholders) as they are.
func jsonText(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}
