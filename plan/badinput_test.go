package plan_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
	"github.com/lunferry/lunferry/plan/plantest"
)

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	prepared := func(e *env) {
		e.add(spec("vol1"))
		_, err := e.p.Prepare(ctx, "vol1")
		require.NoError(t, err)
	}
	cases := []struct {
		name  string
		setup func(e *env)
		do    func(e *env) error
		is    error
		msg   []string
		// clean: the kernel holds nothing of vol1 afterwards.
		clean bool
	}{
		{
			name: "new LUN smaller than old",
			setup: func(e *env) {
				e.k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: gib / 2, ID: "wwid-new"}
				e.add(spec("vol1"))
			},
			do:  func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err },
			is:  plan.ErrSizeMismatch,
			msg: []string{"new LUN", "536870912 bytes (512MiB)", "smaller than the old LUN's 1073741824 bytes (1GiB)"},
		},
		{
			name: "same LUN as old and new in the spec",
			do: func(e *env) error {
				s := spec("vol1")
				s.New = s.Old
				_, err := e.p.Add(ctx, s)
				return err
			},
			is:  plan.ErrInvalidSpec,
			msg: []string{"old and new are the same LUN"},
		},
		{
			name: "same target LUN through another portal",
			setup: func(e *env) {
				s := spec("vol1")
				s.New = s.Old
				s.New.Portal = "192.0.2.11:3260"
				e.add(s)
			},
			do:    func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err },
			is:    plan.ErrSameLUN,
			msg:   []string{"both name LUN 1 of target " + oldIQN, "reach the same device"},
			clean: true,
		},
		{
			name: "same LUN behind two addresses",
			setup: func(e *env) {
				e.k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-old"}
				e.add(spec("vol1"))
			},
			do:  func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err },
			is:  plan.ErrSameLUN,
			msg: []string{"old and new are the same LUN", "wwid-old"},
		},
		{
			name:  "LUN already used by another volume",
			setup: func(e *env) { e.add(spec("vol1")) },
			do: func(e *env) error {
				s := spec("vol2")
				s.Export.IQN = "iqn.2026-11.io.lunferry.proxy:vol2"
				s.New.LUN = 4
				_, err := e.p.Add(ctx, s)
				return err
			},
			is:  plan.ErrConflict,
			msg: []string{"old LUN 192.0.2.10:3260 iqn.2001-05.com.oldarray:tgt1 lun 1 is already the old LUN of volume vol1"},
		},
		{
			name:  "name already used",
			setup: func(e *env) { e.add(spec("vol1")) },
			do:    func(e *env) error { _, err := e.p.Add(ctx, spec("vol1")); return err },
			is:    plan.ErrConflict,
			msg:   []string{"volume vol1 exists (new)"},
		},
		{
			name:  "export IQN already used",
			setup: func(e *env) { e.add(spec("vol1")) },
			do: func(e *env) error {
				s := spec("vol2")
				s.Old.LUN, s.New.LUN = 7, 8
				_, err := e.p.Add(ctx, s)
				return err
			},
			is:  plan.ErrConflict,
			msg: []string{"export IQN", "already used by volume vol1"},
		},
		{
			name: "unreachable portal",
			setup: func(e *env) {
				e.k.Unreachable[newPortal] = true
				e.add(spec("vol1"))
			},
			do:    func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err },
			is:    plan.ErrUnreachable,
			msg:   []string{"log in to new LUN target 192.0.2.20:3260"},
			clean: true,
		},
		{
			name: "login refused (CHAP)",
			setup: func(e *env) {
				e.k.RefuseLogin[newPortal+","+newIQN] = true
				e.add(spec("vol1"))
			},
			do:    func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err },
			is:    plan.ErrLoginRefused,
			msg:   []string{"authorization failure"},
			clean: true,
		},
		{
			name: "host IQN invalid",
			do: func(e *env) error {
				s := spec("vol1")
				s.HostIQN = "iqn.2024-01.lab:host"
				_, err := e.p.Add(ctx, s)
				return err
			},
			is:  plan.ErrInvalidSpec,
			msg: []string{`hostIQN "iqn.2024-01.lab:host" is not a valid iSCSI name`},
		},
		{
			name: "pre-cutover hook fails",
			setup: func(e *env) {
				prepared(e)
				e.k.HookFail["/hooks/quiesce"] = errors.New("hook failed: exit status 3")
			},
			do:  func(e *env) error { _, err := e.p.Cutover(ctx, "vol1"); return err },
			msg: []string{"pre-cutover hook /hooks/quiesce", "exit status 3", "rerun the step, or abort"},
		},
		{
			name: "hook missing, found at prepare",
			setup: func(e *env) {
				e.k.HookMissing["/hooks/login"] = true
				e.add(spec("vol1"))
			},
			do:  func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err },
			is:  plan.ErrInvalidSpec,
			msg: []string{"hook /hooks/login", "no such file", "before the window"},
		},
		{
			name: "finalize before hydration completes",
			setup: func(e *env) {
				prepared(e)
				_, err := e.p.Cutover(ctx, "vol1")
				require.NoError(t, err)
				_, err = e.p.Start(ctx, "vol1")
				require.NoError(t, err)
			},
			do:  func(e *env) error { _, err := e.p.Finalize(ctx, "vol1"); return err },
			is:  plan.ErrNotReady,
			msg: []string{"hydration is at", "finalize once it reaches 100%"},
		},
		{
			name: "dm device with lunferry's name unknown to the state",
			setup: func(e *env) {
				prepared(e)
				e.k.AddDevice(plan.DMName("vol1"))
			},
			do:  func(e *env) error { _, err := e.p.Cutover(ctx, "vol1"); return err },
			is:  plan.ErrUnknownObject,
			msg: []string{"device-mapper device lunferry-vol1 exists but this state did not create it", "neither adopt nor delete"},
		},
		{
			name: "LIO target with the export's name unknown to the state",
			setup: func(e *env) {
				e.add(spec("vol1"))
				e.k.AddExport(exportIQN)
			},
			do:  func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err },
			is:  plan.ErrUnknownObject,
			msg: []string{"LIO target " + exportIQN + " exists but this state did not create it"},
		},
		{
			name: "host never logs in",
			setup: func(e *env) {
				prepared(e)
				e.k.HostLogsIn = false
				s, _ := e.p.Show(ctx, "vol1")
				s.Spec.SessionTimeout = plan.Duration(20 * time.Millisecond)
				require.NoError(t, e.p.Store().Save(s))
			},
			do:  func(e *env) error { _, err := e.p.Cutover(ctx, "vol1"); return err },
			is:  plan.ErrSessionTimeout,
			msg: []string{hostIQN + " did not log in to " + exportIQN},
		},
		{
			name: "cutover before prepare",
			setup: func(e *env) {
				e.add(spec("vol1"))
			},
			do:  func(e *env) error { _, err := e.p.Cutover(ctx, "vol1"); return err },
			is:  plan.ErrWrongStep,
			msg: []string{"run `lunferry migrate prepare vol1` first"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if c.setup != nil {
				c.setup(e)
			}
			err := c.do(e)
			require.Error(t, err)
			if c.is != nil {
				require.ErrorIs(t, err, c.is)
			}
			for _, m := range c.msg {
				require.Contains(t, err.Error(), m)
			}
			if c.clean {
				// The failed step can be aborted and leaves nothing.
				_, err := e.p.Abort(ctx, "vol1")
				require.NoError(t, err)
				e.clean("vol1")
			}
		})
	}
}

func TestStateFileRefused(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, content string
		is            error
		msg           string
	}{
		{"corrupt", `{"version": 1, "spec": {"name": "vol1"`, plan.ErrStateCorrupt, "nothing was changed"},
		{"newer version", `{"version": 99, "spec": {"name": "vol1"}, "step": "new"}`, plan.ErrStateVersion, "version 99, this lunferry reads up to 1"},
		{"garbage", `hello`, plan.ErrStateCorrupt, "restore the file from a backup"},
		{"newer version, new field", `{"version": 2, "spec": {"name": "vol1"}, "step": "new", "shiny": 1}`, plan.ErrStateVersion, "version 2, this lunferry reads up to 1"},
		{"unknown field", `{"version": 1, "spec": {"name": "vol1"}, "step": "new", "shiny": 1}`, plan.ErrStateCorrupt, `unknown field "shiny"`},
		{"no version", `{"spec": {"name": "vol1"}, "step": "new"}`, plan.ErrStateCorrupt, "move it aside"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.add(spec("vol1"))
			path := filepath.Join(e.dir, "volumes", "vol1.json")
			require.NoError(t, os.WriteFile(path, []byte(c.content), 0o600))
			e.k.ResetCalls()
			for _, f := range []func() error{
				func() error { _, err := e.p.Prepare(ctx, "vol1"); return err },
				func() error { _, err := e.p.Abort(ctx, "vol1"); return err },
				func() error { _, err := e.p.Restore(ctx); return err },
				func() error { _, err := e.p.Status(ctx); return err },
				func() error { return e.p.Remove(ctx, "vol1", false) },
			} {
				err := f()
				require.ErrorIs(t, err, c.is)
				require.Contains(t, err.Error(), c.msg)
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, c.content, string(got), "state file untouched")
			require.Empty(t, e.k.Calls(), "kernel untouched")
		})
	}
}

func TestLockHeld(t *testing.T) {
	e := newEnv(t)
	e.add(spec("vol1"))
	l, err := plan.AcquireLock(context.Background(), e.dir, 0)
	require.NoError(t, err)
	defer l.Release()
	// flock locks belong to the open file description: a second open in the
	// same process conflicts like another process would.
	_, err = e.p.Prepare(context.Background(), "vol1")
	require.ErrorIs(t, err, plan.ErrLocked)
	require.Contains(t, err.Error(), "held by pid "+strconv.Itoa(os.Getpid()))
	res, err := e.p.Tick(context.Background(), false)
	require.NoError(t, err, "the control loop skips a round while locked")
	require.Nil(t, res)
	l.Release()
	_, err = e.p.Prepare(context.Background(), "vol1")
	require.NoError(t, err)
}

func TestSpecValidation(t *testing.T) {
	s := spec("Bad_Name")
	s.Export.Portals = []string{"proxy.example:3260"}
	s.RegionSectors = 100
	s.Old.Portal = "array.example.com"
	s.Normalize()
	err := s.Validate()
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	for _, m := range []string{`name "Bad_Name"`, `export.portals "proxy.example:3260": want ip:port`,
		"regionSectors 100: want a power of two", `old.portal "array.example.com:3260": want ip:port`} {
		require.Contains(t, err.Error(), m)
	}
}

func TestRunbook(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rb.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"volumes": [{
		"name": "db1",
		"old": {"portal": "10.0.0.10", "iqn": "iqn.2001-05.com.old:a", "lun": 3, "sizeBytes": "100GiB",
		        "chap": {"username": "proxy", "secretFile": "/etc/lunferry/old.secret"}},
		"new": {"portal": "10.0.1.20:3260", "iqn": "iqn.2010-01.com.new:b", "lun": 7},
		"hostIQN": "iqn.1994-05.com.redhat:db1",
		"export": {"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"]},
		"throttle": "mon-fri 08:00-18:00=50MiB/s; *=200MiB/s",
		"hooks": {"preCutover": ["/etc/lunferry/quiesce"], "timeout": "90s"}
	}]}`), 0o600))
	rb, err := plan.ReadRunbook(p)
	require.NoError(t, err)
	require.Len(t, rb.Volumes, 1)
	v := rb.Volumes[0]
	require.Equal(t, "10.0.0.10:3260", v.Old.Portal)
	require.Equal(t, plan.Bytes(100<<30), v.Old.SizeBytes)
	require.Equal(t, uint64(plan.DefaultRegionSectors), v.RegionSectors)
	require.Equal(t, 90*time.Second, v.Hooks.Timeout.D())
	require.Equal(t, "/etc/lunferry/old.secret", v.Old.CHAP.SecretFile)

	require.NoError(t, os.WriteFile(p, []byte(`{"volumes": [{"name": "x", "oldd": {}}]}`), 0o600))
	_, err = plan.ReadRunbook(p)
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	require.Contains(t, err.Error(), `unknown field "oldd"`)
}

func TestMetadataBytes(t *testing.T) {
	require.Equal(t, uint64(5<<20), plan.MetadataBytes(64<<20, 128))
	// 1 TiB in 64 KiB regions: 16 Mi regions, 2 MiB bitset, 4+8 MiB.
	require.Equal(t, uint64(12<<20), plan.MetadataBytes(1<<40, 128))
	// 1 TiB in 4 KiB regions: 256 Mi regions, 32 MiB bitset.
	require.Equal(t, uint64(132<<20), plan.MetadataBytes(1<<40, 8))
	// A given device: 1 MiB + twice the bitset.
	require.Equal(t, uint64(1<<20+4<<20), plan.MinMetadataBytes(1<<40, 128))
}

// writeRunbook writes a one-volume runbook whose export and LUN parts are
// given as JSON.
func writeRunbook(t *testing.T, old, newLUN, export string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rb.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"volumes": [{"name": "db1",
		"old": `+old+`, "new": `+newLUN+`,
		"hostIQN": "iqn.1994-05.com.redhat:db1", "export": `+export+`}]}`), 0o600))
	return p
}

const (
	rbOld    = `{"portal": "10.0.0.10", "iqn": "iqn.2001-05.com.old:a", "lun": 3}`
	rbNew    = `{"portal": "10.0.1.20", "iqn": "iqn.2010-01.com.new:b", "lun": 7}`
	rbExport = `{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"]}`
)

// TestRunbookCHAPEverywhere: discovery CHAP is its own entry of a LUN, and
// the export takes CHAP (one-way or mutual) for the host.
func TestRunbookCHAPEverywhere(t *testing.T) {
	p := writeRunbook(t,
		`{"portal": "10.0.0.10", "iqn": "iqn.2001-05.com.old:a", "lun": 3,
		  "discoveryChap": {"username": "disc", "secretFile": "/etc/lunferry/old-disc.secret"}}`,
		`{"portal": "10.0.1.20", "iqn": "iqn.2010-01.com.new:b", "lun": 7,
		  "chap": {"username": "proxy", "secretFile": "/etc/lunferry/new.secret",
		           "mutualUsername": "array", "mutualSecretFile": "/etc/lunferry/new-mutual.secret"},
		  "discoveryChap": {"username": "disc2", "secretFile": "/etc/lunferry/new-disc.secret"}}`,
		`{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"],
		  "chap": {"username": "db1-host", "secretFile": "/etc/lunferry/export.secret",
		           "mutualUsername": "proxy1", "mutualSecretFile": "/etc/lunferry/export-mutual.secret"}}`)
	rb, err := plan.ReadRunbook(p)
	require.NoError(t, err)
	v := rb.Volumes[0]
	require.Nil(t, v.Old.CHAP)
	require.Equal(t, &plan.CHAP{Username: "disc", SecretFile: "/etc/lunferry/old-disc.secret"}, v.Old.DiscoveryCHAP)
	require.Equal(t, "array", v.New.CHAP.MutualUsername)
	require.Equal(t, "disc2", v.New.DiscoveryCHAP.Username)
	require.Equal(t, &plan.CHAP{Username: "db1-host", SecretFile: "/etc/lunferry/export.secret",
		MutualUsername: "proxy1", MutualSecretFile: "/etc/lunferry/export-mutual.secret"}, v.Export.CHAP)
}

// TestRunbookBadCHAP: each CHAP entry is checked at volume add, naming the
// field to fix.
func TestRunbookBadCHAP(t *testing.T) {
	for _, c := range []struct {
		name, old, newLUN, export, msg string
	}{
		{"export chap without secret", rbOld, rbNew,
			`{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"], "chap": {"username": "h"}}`,
			"export.chap needs username and secretFile"},
		{"export chap relative secret", rbOld, rbNew,
			`{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"], "chap": {"username": "h", "secretFile": "export.secret"}}`,
			`export.chap.secretFile "export.secret": give an absolute path`},
		{"export chap user with a space", rbOld, rbNew,
			`{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"], "chap": {"username": "db1 host", "secretFile": "/s"}}`,
			`export.chap.username "db1 host": use 1-255 printable characters without spaces`},
		{"export mutual with the same file", rbOld, rbNew,
			`{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["10.0.2.5:3260"], "chap": {"username": "h", "secretFile": "/s", "mutualUsername": "p", "mutualSecretFile": "/s"}}`,
			"export.chap: secretFile and mutualSecretFile are the same file: use a different secret for each direction"},
		{"discovery chap half mutual", `{"portal": "10.0.0.10", "iqn": "iqn.2001-05.com.old:a", "lun": 3,
			"discoveryChap": {"username": "d", "secretFile": "/s", "mutualUsername": "m"}}`, rbNew, rbExport,
			"old.discoveryChap: mutualUsername and mutualSecretFile go together"},
		{"discovery chap relative", rbOld, `{"portal": "10.0.1.20", "iqn": "iqn.2010-01.com.new:b", "lun": 7,
			"discoveryChap": {"username": "d", "secretFile": "d.secret"}}`, rbExport,
			`new.discoveryChap.secretFile "d.secret": give an absolute path`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := plan.ReadRunbook(writeRunbook(t, c.old, c.newLUN, c.export))
			require.ErrorIs(t, err, plan.ErrInvalidSpec)
			require.ErrorContains(t, err, c.msg)
		})
	}
}

// TestWildcardExportPortal: an export listening on every address of the
// proxy is refused at volume add unless the runbook says so.
func TestWildcardExportPortal(t *testing.T) {
	ctx := context.Background()
	for _, portal := range []string{"0.0.0.0:3260", "[::]:3260", "0.0.0.0", "::"} {
		t.Run(portal, func(t *testing.T) {
			e := newEnv(t)
			s := spec("vol1")
			s.Export.Portals = []string{"192.0.2.1:3260", portal}
			_, err := e.p.Add(ctx, s)
			require.ErrorIs(t, err, plan.ErrInvalidSpec)
			require.ErrorContains(t, err, "listens on every address of the proxy")
			require.ErrorContains(t, err, `"allowWildcardPortal": true`)
			_, err = plan.ReadRunbook(writeRunbook(t, rbOld, rbNew,
				`{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["`+portal+`"]}`))
			require.ErrorContains(t, err, "allowWildcardPortal")
			rb, err := plan.ReadRunbook(writeRunbook(t, rbOld, rbNew,
				`{"iqn": "iqn.2026-11.com.example.proxy:db1", "portals": ["`+portal+`"], "allowWildcardPortal": true}`))
			require.NoError(t, err)
			_, err = e.p.Add(ctx, rb.Volumes[0])
			require.NoError(t, err)
		})
	}
}

// TestSecretFilesCheckedBeforeTheWindow: prepare and cutover refuse a
// secret file open to other users, or not owned by root, before anything
// touches the kernel or a hook runs; the error names the field, the file
// and the fix.
func TestSecretFilesCheckedBeforeTheWindow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ports := e.k.Ports()
	ports.Secrets = kernel.SecretFiles{Owner: os.Getuid()}
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports})
	require.NoError(t, err)
	secret := filepath.Join(e.dir, "export.secret")
	require.NoError(t, os.WriteFile(secret, []byte("host-secret-123\n"), 0o640))
	s := spec("vol1")
	s.Export.CHAP = &plan.CHAP{Username: "vol1-host", SecretFile: secret}
	_, err = p.Add(ctx, s)
	require.NoError(t, err)
	_, err = p.Prepare(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	require.ErrorContains(t, err, "export.chap.secretFile "+secret)
	require.ErrorContains(t, err, "chmod 600 "+secret)
	require.Empty(t, e.k.Calls())

	require.NoError(t, os.Chmod(secret, 0o600))
	_, err = p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(secret, 0o644))
	_, err = p.Cutover(ctx, "vol1")
	require.ErrorContains(t, err, "chmod 600 "+secret)
	require.Empty(t, e.k.Hooks, "no hook ran")

	require.NoError(t, os.Chmod(secret, 0o600))
	ports.Secrets = kernel.SecretFiles{Owner: os.Getuid() + 1}
	p, err = plan.New(plan.Options{StateDir: e.dir, Ports: ports})
	require.NoError(t, err)
	_, err = p.Cutover(ctx, "vol1")
	require.ErrorContains(t, err, "chown")
	v, err := p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepPrepared, v.Step)
}
