package kernel

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/lio/configfstest"
	"github.com/lunferry/lunferry/plan"
)

const (
	chapExportIQN = "iqn.2026-11.io.lunferry.proxy:v1"
	chapHostIQN   = "iqn.1994-05.com.redhat:h"
)

// fakeExporter is the exporter over a fake configfs (f), on a proxy whose
// only address is 192.0.2.1, owning its secret files as the test's user.
func fakeExporter(t *testing.T) (*exporter, *configfstest.FS) {
	f := configfstest.New(t)
	return &exporter{r: lio.NewRoot(lio.Options{ConfigFSRoot: f.Root, FS: f,
		Addrs: lio.StaticAddrs{netip.MustParsePrefix("192.0.2.1/24")}}), owner: os.Getuid()}, f
}

func chapExportSpec(c *plan.CHAP) plan.ExportSpec {
	return plan.ExportSpec{IQN: chapExportIQN, Portals: []string{"192.0.2.1:3260"}, StorageName: "lunferry-v1",
		Device: "/dev/dm-3", HostIQN: chapHostIQN, CHAP: c}
}

// TestExportCHAP: the export's ACL gets the runbook's CHAP, one-way and
// mutual, read from the secret files.
func TestExportCHAP(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name           string
		chap           *plan.CHAP
		mutualUser     string
		mutualPassword string
	}{
		{"one-way", &plan.CHAP{Username: "db1-host", SecretFile: writeSecret(t, dir, "h1", "host-secret-123")}, "", ""},
		{"mutual", &plan.CHAP{Username: "db1-host", SecretFile: writeSecret(t, dir, "h2", "host-secret-123"),
			MutualUsername: "proxy1", MutualSecretFile: writeSecret(t, dir, "p2", "proxy-secret-456")}, "proxy1", "proxy-secret-456"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, f := fakeExporter(t)
			require.NoError(t, e.Apply(context.Background(), chapExportSpec(tc.chap)))
			tpg := filepath.Join(f.Root, "iscsi", chapExportIQN, "tpgt_1")
			auth := filepath.Join(tpg, "acls", chapHostIQN, "auth")
			for file, want := range map[string]string{"userid": "db1-host", "password": "host-secret-123",
				"userid_mutual": tc.mutualUser, "password_mutual": tc.mutualPassword} {
				b, err := f.ReadFile(filepath.Join(auth, file))
				require.NoError(t, err)
				require.Equal(t, want, strings.TrimSpace(string(b)), file)
			}
			b, err := f.ReadFile(filepath.Join(tpg, "attrib", "authentication"))
			require.NoError(t, err)
			require.Equal(t, "1", strings.TrimSpace(string(b)))
		})
	}
}

// TestExportCHAPSecretRefused: a secret file open to other users is
// refused before anything is created.
func TestExportCHAPSecretRefused(t *testing.T) {
	p := writeSecret(t, t.TempDir(), "h", "host-secret-123")
	require.NoError(t, os.Chmod(p, 0o644))
	e, f := fakeExporter(t)
	err := e.Apply(context.Background(), chapExportSpec(&plan.CHAP{Username: "db1-host", SecretFile: p}))
	require.ErrorContains(t, err, "chmod 600 "+p)
	require.Empty(t, f.Objects())
}

// TestDryRunExportCHAP: a dry run names the CHAP users and the secrets'
// files, and never reads or prints a secret.
func TestDryRunExportCHAP(t *testing.T) {
	dir := t.TempDir()
	c := &plan.CHAP{Username: "db1-host", SecretFile: writeSecret(t, dir, "h", "host-secret-123"),
		MutualUsername: "proxy1", MutualSecretFile: writeSecret(t, dir, "p", "proxy-secret-456")}
	for _, root := range []string{configfstest.New(t).Root, filepath.Join(dir, "no-configfs")} {
		var out bytes.Buffer
		ports := DryRunPorts(&out, Options{ConfigFSRoot: root})
		require.NoError(t, ports.Exporter.Apply(context.Background(), chapExportSpec(c)))
		s := out.String()
		require.Contains(t, s, "db1-host")
		require.Contains(t, s, "proxy1")
		require.Contains(t, s, c.SecretFile+" and "+c.MutualSecretFile+" (mutual)")
		require.Contains(t, s, "<secret>")
		require.NotContains(t, s, "host-secret-123")
		require.NotContains(t, s, "proxy-secret-456")
	}
}
