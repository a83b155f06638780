package initiator

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePortal(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.10":           "192.0.2.10:3260",
		"192.0.2.10:3261":      "192.0.2.10:3261",
		" 192.0.2.10:3260 ":    "192.0.2.10:3260",
		"2001:db8::1":          "[2001:db8::1]:3260",
		"[2001:db8::1]":        "[2001:db8::1]:3260",
		"[2001:db8::1]:3262":   "[2001:db8::1]:3262",
		"[::ffff:192.0.2.1]:1": "192.0.2.1:1",
	} {
		p, err := ParsePortal(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, p.String(), in)
	}
	for _, bad := range []string{"", "array.example.com:3260", "192.0.2.300", "[fe80::1%eth0]:3260", "1.2.3.4:99999"} {
		_, err := ParsePortal(bad)
		assert.Error(t, err, bad)
	}
	a, _ := ParsePortal("192.0.2.10")
	b, _ := ParsePortal("192.0.2.10:3260")
	assert.True(t, a.Equal(b))
}

func TestNodeArgs(t *testing.T) {
	n := Node{TargetIQN: t1, Portal: Portal{Addr: netip.MustParseAddr("2001:db8::1")}, TPGT: 3}
	assert.Equal(t, "[2001:db8::1]:3260,3 "+t1, n.String())
	n.TPGT = 0
	assert.Equal(t, "[2001:db8::1]:3260", n.portalArg())
}

func TestValidateTargetName(t *testing.T) {
	for _, ok := range []string{t1, "eui.02004567A425678D", "naa.52004567BA64678D", "IQN.2001-04.COM.EXAMPLE:X"} {
		assert.NoError(t, ValidateTargetName(ok), ok)
	}
	for _, bad := range []string{"", "target1", "iqn.2001-04.com.example:a b", "iqn.2001-04.com.example:a/b", "iqn.2001-04.com.example:a,b", "iqn." + string(make([]byte, 230))} {
		assert.Error(t, ValidateTargetName(bad), bad)
	}
}

func TestParseDiscovery(t *testing.T) {
	out := []byte("127.0.0.1:3260,1 iqn.2003-01.org.linux-iscsi.lab:t1\n[2001:db8::1]:3260,2 iqn.2003-01.org.linux-iscsi.lab:t2\narray.example.com:3260,1 iqn.x:skipped\n\n")
	nodes, err := parseDiscovery(out)
	require.NoError(t, err)
	assert.Equal(t, []Node{
		{TargetIQN: t1, Portal: lab, TPGT: 1},
		{TargetIQN: t2, Portal: Portal{Addr: netip.MustParseAddr("2001:db8::1"), Port: 3260}, TPGT: 2},
	}, nodes)
	for _, bad := range []string{"garbage\n", "127.0.0.1:3260 iqn.x:y\n", "127.0.0.1:3260,x iqn.x:y\n"} {
		_, err := parseDiscovery([]byte(bad))
		assert.Error(t, err, bad)
	}
}
