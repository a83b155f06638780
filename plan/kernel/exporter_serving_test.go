package kernel

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
)

// TestServes: a target serves the host only with TPG 1 enabled, a LUN over
// lunferry's storage object and the host's ACL mapping it.
func TestServes(t *testing.T) {
	const so, host = "lunferry-vol1", "iqn.2026-11.io.example:host"
	full := func() lio.TargetConfig {
		return lio.TargetConfig{WWN: "iqn.2026-11.io.example:export", TPGs: []lio.TPGConfig{{
			Tag: 1, Enable: true,
			LUNs:     []lio.LUNConfig{{Index: 0, StorageObject: "/backstores/block/" + so}},
			NodeACLs: []lio.NodeACLConfig{{NodeWWN: host, MappedLUNs: []lio.MappedLUNConfig{{Index: 0, TPGLUN: 0}}}},
		}}}
	}
	require.True(t, serves(full(), so, host))
	for name, change := range map[string]func(*lio.TargetConfig){
		"no LUN":             func(c *lio.TargetConfig) { c.TPGs[0].LUNs = nil },
		"TPG disabled":       func(c *lio.TargetConfig) { c.TPGs[0].Enable = false },
		"another TPG":        func(c *lio.TargetConfig) { c.TPGs[0].Tag = 2 },
		"another object":     func(c *lio.TargetConfig) { c.TPGs[0].LUNs[0].StorageObject = "/backstores/block/other" },
		"another host's ACL": func(c *lio.TargetConfig) { c.TPGs[0].NodeACLs[0].NodeWWN = "iqn.2026-11.io.example:other" },
		"LUN not mapped":     func(c *lio.TargetConfig) { c.TPGs[0].NodeACLs[0].MappedLUNs = nil },
		"no TPG":             func(c *lio.TargetConfig) { c.TPGs = nil },
	} {
		c := full()
		change(&c)
		require.False(t, serves(c, so, host), name)
	}
}
