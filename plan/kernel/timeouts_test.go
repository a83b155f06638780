package kernel

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestLoginWritesRunbookTimeouts: a LUN's sessionTimeouts reach the node
// record before login, and a dry run prints the same values.
func TestLoginWritesRunbookTimeouts(t *testing.T) {
	lun := plan.LUN{SessionTimeouts: &plan.SessionTimeouts{Replacement: plan.Duration(300 * time.Second), NoopTimeout: plan.Duration(15 * time.Second)}}
	target := plan.Target{Portal: arrayPortal, IQN: arrayIQN, Timeouts: lun.SessionTimeouts.Initiator()}
	calls, _ := loginRecorded(t, target)
	want := "-n node.session.timeo.replacement_timeout -v 300 -n node.conn[0].timeo.noop_out_interval -v 5 -n node.conn[0].timeo.noop_out_timeout -v 15"
	require.Contains(t, calls[len(calls)-2], want)

	var out bytes.Buffer
	require.NoError(t, DryRunPorts(&out, Options{}).Initiator.Login(context.Background(), target))
	require.Contains(t, out.String(), want)
}
