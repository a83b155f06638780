package e2e

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// unitFile is the [Service] and [Unit] settings of a systemd unit, each
// key with its values in order.
type unitFile map[string][]string

// readUnit parses a unit file as systemd does for the settings the test
// uses: sections, comments, key=value (no line continuations: the unit
// has none).
func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	for sc := bufio.NewScanner(f); sc.Scan(); {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l
		case strings.HasSuffix(l, "\\"):
			t.Fatalf("%s: line continuation not handled: %s", path, l)
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: not a setting: %s", path, l)
			}
			key := section + strings.TrimSpace(k)
			u[key] = append(u[key], strings.TrimSpace(v))
		}
	}
	return u
}

// one returns the single value of a setting.
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("unit: want one %s, have %q", key, u[key])
	}
	return u[key][0]
}

// execStart returns the unit's ExecStart command line, split on blanks
// (it has no quoting) and without systemd's prefixes.
func (u unitFile) execStart(t *testing.T) []string {
	t.Helper()
	argv := strings.Fields(strings.TrimLeft(u.one(t, "[Service]ExecStart"), "-@:+!"))
	if len(argv) == 0 {
		t.Fatal("unit: empty ExecStart")
	}
	return argv
}

// envFile is the unit's EnvironmentFile path ("-" prefix: optional).
func (u unitFile) envFile(t *testing.T) string {
	t.Helper()
	return strings.TrimPrefix(u.one(t, "[Service]EnvironmentFile"), "-")
}

// unitSpan is a time span setting of the unit as a duration (the spans
// the unit uses: a number with s, sec, min or h).
func unitSpan(t *testing.T, u unitFile, key string) time.Duration {
	t.Helper()
	v := u.one(t, key)
	d, err := time.ParseDuration(strings.NewReplacer("min", "m", "sec", "s").Replace(v))
	if err != nil || d <= 0 {
		t.Fatalf("unit: %s=%s: %v", key, v, err)
	}
	return d
}

// checkUnitPaths checks that what the unit names was installed: the
// ExecStart and ExecStartPre programs, the environment file, the man
// pages of Documentation=.
func checkUnitPaths(t *testing.T, u unitFile) {
	t.Helper()
	progs := []string{u.execStart(t)[0]}
	for _, pre := range u["[Service]ExecStartPre"] {
		progs = append(progs, strings.Fields(strings.TrimLeft(pre, "-@:+!"))[0])
	}
	for _, p := range progs {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			t.Fatalf("unit runs %s: not an installed program (%v)", p, err)
		}
	}
	if _, err := os.Stat(u.envFile(t)); err != nil {
		t.Fatalf("unit's EnvironmentFile: %v", err)
	}
	for _, doc := range strings.Fields(u.one(t, "[Unit]Documentation")) {
		name, ok := strings.CutPrefix(doc, "man:")
		if !ok {
			continue
		}
		page, section, _ := strings.Cut(strings.TrimSuffix(name, ")"), "(")
		p := "/usr/share/man/man" + section + "/" + page + "." + section + ".gz"
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("unit's Documentation=%s: %v", doc, err)
		}
	}
	t.Logf("unit: ExecStart=%s, EnvironmentFile=%s, WatchdogSec=%s, Documentation=%s: all installed",
		strings.Join(u.execStart(t), " "), u.envFile(t), unitSpan(t, u, "[Service]WatchdogSec"), u.one(t, "[Unit]Documentation"))
}

// readEnvFile parses an EnvironmentFile as systemd does for simple
// assignments: KEY=VALUE lines, # and ; comments, optional quotes.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: not an assignment: %s", path, l)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env = append(env, strings.TrimSpace(k)+"="+v)
	}
	return env
}

// envValue returns KEY's value in env.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			v = val
		}
	}
	return v
}
