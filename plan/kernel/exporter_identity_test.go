package kernel

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
)

// TestExportWithAnotherIdentityRebuilt: lunferry's export holding other
// INQUIRY strings than its spec (targetctl restore brings the storage
// object back without the old LUN's vendor, product and revision, and the
// kernel refuses to change them while a LUN exports it) is torn down and
// built again with the spec's identity, not left failing every restore.
func TestExportWithAnotherIdentityRebuilt(t *testing.T) {
	e, f := fakeExporter(t)
	ctx := context.Background()
	s := chapExportSpec(nil)
	s.WWN = lio.WWN{UnitSerial: "6001405abc", VendorID: "LIO-ORG", ProductID: "IBLOCK"}
	require.NoError(t, e.Apply(ctx, s))
	s.WWN.ProductID = "FILEIO"
	require.NoError(t, e.Apply(ctx, s))
	b, err := f.ReadFile(f.Root + "/core/iblock_0/lunferry-v1/wwn/product_id")
	require.NoError(t, err)
	require.Equal(t, "FILEIO", strings.TrimSpace(string(b)))
	ok, err := e.Lookup(ctx, s.IQN)
	require.NoError(t, err)
	require.True(t, ok, "export rebuilt")
}
