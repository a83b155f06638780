package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan/kernel"
)

// TestKernelDoctor: in the lab every preflight check passes (the lab has
// every module, configfs, iscsid, a writable state dir; logind's absence is
// not a check).
func TestKernelDoctor(t *testing.T) {
	vmtest.Require(t)
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code := run(context.Background(), e, []string{"lunferry", "--state-dir", t.TempDir(), "--json", "doctor"})
	var checks []kernel.Check
	require.NoError(t, json.Unmarshal(out.Bytes(), &checks), out.String())
	for _, c := range checks {
		require.True(t, c.OK, "%s: %s (fix: %s)", c.Name, c.Detail, c.Fix)
	}
	require.Equal(t, ExitOK, code, errb.String())
	require.Len(t, checks, 13)
}
