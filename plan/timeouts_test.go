package plan_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
)

func TestSessionTimeoutsRunbook(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rb.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"volumes": [{
		"name": "db1",
		"old": {"portal": "10.0.0.10", "iqn": "iqn.2001-05.com.old:a", "lun": 3,
		        "sessionTimeouts": {"replacement": "300s", "noopInterval": "5s", "noopTimeout": "15s"}},
		"new": {"portal": "10.0.1.20:3260", "iqn": "iqn.2010-01.com.new:b", "lun": 7,
		        "sessionTimeouts": {"replacement": "3m"}},
		"hostIQN": "iqn.1994-05.com.redhat:db1",
		"export": {"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"]}
	}]}`), 0o600))
	rb, err := plan.ReadRunbook(p)
	require.NoError(t, err)
	v := rb.Volumes[0]
	require.Equal(t, initiator.Timeouts{ReplacementTimeout: 300 * time.Second, NoopOutInterval: 5 * time.Second,
		NoopOutTimeout: 15 * time.Second, LoginTimeout: 15 * time.Second, LoginRetries: 4}, v.Old.SessionTimeouts.Initiator())
	require.Equal(t, 180*time.Second, v.New.SessionTimeouts.Initiator().ReplacementTimeout)
	require.Equal(t, 10*time.Second, v.New.SessionTimeouts.Initiator().NoopOutTimeout, "zero fields take the defaults")
	var none *plan.SessionTimeouts
	require.Equal(t, initiator.DefaultTimeouts(), none.Initiator(), "no sessionTimeouts: the defaults")
}

func TestSessionTimeoutsRefused(t *testing.T) {
	s := spec("vol1")
	s.Old.SessionTimeouts = &plan.SessionTimeouts{Replacement: plan.Duration(5 * time.Second), NoopInterval: plan.Duration(1500 * time.Millisecond)}
	s.New.SessionTimeouts = &plan.SessionTimeouts{NoopTimeout: plan.Duration(2 * time.Minute), Replacement: plan.Duration(-time.Second)}
	s.Normalize()
	err := s.Validate()
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	for _, m := range []string{
		"old.sessionTimeouts.replacement 5s: want 10s to 1h0m0s (leave it out for the default 2m0s)",
		`old.sessionTimeouts.noopInterval 1.5s: give whole seconds (open-iscsi keeps seconds), e.g. "2s"`,
		"new.sessionTimeouts.noopTimeout 2m0s: want 1s to 1m0s",
		"new.sessionTimeouts.replacement -1s: want 10s to 1h0m0s",
	} {
		require.Contains(t, err.Error(), m)
	}
}
