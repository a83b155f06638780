package initiator

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExecRunner(t *testing.T) {
	ctx := context.Background()
	out, serr, code, err := ExecRunner{}.Run(ctx, "sh", []string{"-c", "cat; echo err >&2; exit 3"}, []byte("in\n"))
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, "in\n", string(out))
	assert.Equal(t, "err\n", string(serr))

	_, _, _, err = ExecRunner{}.Run(ctx, "lunferry-no-such-program", nil, nil)
	assert.ErrorContains(t, err, "install open-iscsi")

	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, _, _, err = ExecRunner{}.Run(ctx, "sleep", []string{"5"}, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestPrintRunner(t *testing.T) {
	var b bytes.Buffer
	p := &PrintRunner{W: &b, Prefix: "+ "}
	_, _, code, err := p.Run(context.Background(), "iscsiadm", []string{"-m", "node", "-n", "node.conn[0].x", "-v", "a b", "-v", "it's", "-v", ""}, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Equal(t, `+ iscsiadm -m node -n 'node.conn[0].x' -v 'a b' -v 'it'\''s' -v ''`+"\n", b.String())
}

func TestExitCodes(t *testing.T) {
	assert.Equal(t, "ISCSI_ERR_SESS_EXISTS", ExitSessExists.String())
	assert.Equal(t, "ISCSI_ERR_NO_OBJS_FOUND", ExitCode(21).String())
	assert.Equal(t, "ISCSI_ERR_LOGIN_AUTH_FAILED", ExitCode(24).String())
	assert.Equal(t, "exit status 99", ExitCode(99).String())
	for code, want := range map[ExitCode]error{
		15: ErrSessionExists, 21: ErrNotFound, 24: ErrAuthFailed, 8: ErrUnreachable, 4: ErrUnreachable,
		11: ErrUnreachable, 19: ErrLoginRefused, 20: ErrDaemon, 12: ErrDriver,
	} {
		err := error(&IscsiadmError{Code: code})
		assert.True(t, errors.Is(err, want), "exit %d", code)
	}
	assert.False(t, errors.Is(&IscsiadmError{Code: 7}, ErrNotFound))
}

func TestTimeouts(t *testing.T) {
	assert.NoError(t, Timeouts{}.Validate())
	assert.Error(t, Timeouts{NoopOutTimeout: -time.Second}.Validate())
	assert.Error(t, Timeouts{LoginTimeout: 2500 * time.Millisecond}.Validate())
	got := Timeouts{ReplacementTimeout: 300 * time.Second}.settings()
	var s []string
	for _, r := range got {
		s = append(s, r.String())
	}
	assert.Equal(t, []string{
		"node.session.timeo.replacement_timeout = 300",
		"node.conn[0].timeo.noop_out_interval = 5",
		"node.conn[0].timeo.noop_out_timeout = 10",
		"node.conn[0].timeo.login_timeout = 15",
		"node.session.initial_login_retry_max = 4",
	}, s)
	assert.Error(t, Timeouts{LoginRetries: -1}.Validate())
}
