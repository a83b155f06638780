package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

// fakeVerifier answers with a fixed result; a result with mismatches
// comes with its *clone.MismatchError.
type fakeVerifier struct {
	res  clone.VerifyResult
	rate clone.Rate
}

func (f *fakeVerifier) Verify(_ context.Context, old, nw, _ string, _ uint64, _ []clone.Extent, o clone.VerifyOptions) (clone.VerifyResult, error) {
	f.rate = o.Rate
	if !f.res.Equal() {
		return f.res, &clone.MismatchError{A: old, B: nw, Result: f.res}
	}
	return f.res, nil
}

// VerifyHostView finds the host's view equal to the new LUN: what it
// compared is the same as Verify's result's size.
func (f *fakeVerifier) VerifyHostView(_ context.Context, _, _, _ string, only []clone.Extent, _ clone.VerifyOptions) (clone.VerifyResult, error) {
	var n uint64
	for _, x := range only {
		n += x.Length
	}
	return clone.VerifyResult{Compared: n, Total: n}, nil
}

// runVerifying is c.run with f as the verifier.
func (c *cliEnv) runVerifying(f *fakeVerifier, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	ports := c.k.Ports()
	ports.Verifier = f
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		ports: func(globals) plan.Ports { return ports }}
	code := run(context.Background(), e, append([]string{"lunferry", "--state-dir", c.dir, "--lock-wait", "0"}, args...))
	return code, out.String(), errb.String()
}

func TestVerifyThroughTheCLI(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	require.Contains(t, c.ok("--help"), "9    verify found data that differs")

	f := &fakeVerifier{res: clone.VerifyResult{Compared: 8 << 20, Total: 8 << 20, Duration: time.Second}}
	// The era layer tracks the host's writes: no --host-stopped needed.
	code, out, errs := c.runVerifying(f, "migrate", "verify", "vol1")
	assert.Equal(t, 0, code, errs)
	assert.Contains(t, out, "0B the host wrote since cutover (0 ranges): not compared with the old LUN; new LUN vs the host's view: compared 0B")
	code, _, errs = c.runVerifying(f, "migrate", "verify", "--host-stopped", "--rate", "0", "vol1")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "would never finish")

	code, out, errs = c.runVerifying(f, "migrate", "verify", "--host-stopped", "--rate", "20MiB/s", "vol1")
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, 20*clone.MiB, f.rate)
	assert.Contains(t, out, "compared 8MiB of 8MiB hydrated (old /dev/sdc, new /dev/sdb) in 1s, 8MiB/s per LUN")
	assert.Contains(t, out, "the new LUN holds what the old one does")

	f.res.MismatchedBytes, f.res.Mismatches = 1024, []clone.Extent{{Offset: 4096, Length: 1024}}
	code, out, errs = c.runVerifying(f, "migrate", "verify", "--host-stopped", "vol1")
	assert.Equal(t, ExitMismatch, code)
	assert.Contains(t, out, "differs: offset 4096 length 1024")
	assert.Contains(t, errs, "data differs")
	assert.Equal(t, clone.Unlimited, f.rate)

	code, out, _ = c.runVerifying(f, "--json", "migrate", "verify", "--host-stopped", "vol1")
	assert.Equal(t, ExitMismatch, code)
	var rep plan.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, f.res.Mismatches, rep.Result.Mismatches)
}

func TestFinalizeVerifyThroughTheCLI(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	f := &fakeVerifier{res: clone.VerifyResult{Compared: 8 << 20, Total: 8 << 20, Duration: time.Second,
		MismatchedBytes: 512, Mismatches: []clone.Extent{{Offset: 8192, Length: 512}}}}
	code, _, errs := c.runVerifying(f, "migrate", "finalize", "--verify", "vol1")
	assert.Equal(t, ExitNotReady, code, "not hydrated: nothing read")
	assert.Contains(t, errs, "hydration has not started")
	assert.Zero(t, f.rate, "verify did not run")

	c.ok("migrate", "start", "--follow", "--interval", "1ms", "vol1")
	code, out, errs := c.runVerifying(f, "migrate", "finalize", "--verify", "--rate", "50MiB/s", "vol1")
	assert.Equal(t, ExitMismatch, code, errs)
	assert.Contains(t, out, "differs: offset 8192 length 512")
	assert.NotContains(t, out, "finalized")
	assert.Equal(t, 50*clone.MiB, f.rate)
	code, out, _ = c.runVerifying(f, "--json", "migrate", "finalize", "--verify", "vol1")
	assert.Equal(t, ExitMismatch, code)
	var rep plan.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, f.res.Mismatches, rep.Result.Mismatches)
	assert.Contains(t, c.ok("migrate", "status", "vol1"), "hydrated", "a difference finalizes nothing")

	f.res.MismatchedBytes, f.res.Mismatches = 0, nil
	code, out, errs = c.runVerifying(f, "migrate", "finalize", "--verify", "vol1")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "compared 8MiB of 8MiB hydrated")
	assert.Contains(t, out, "volume vol1 finalized")
}
