package initiator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecretNeverPrints(t *testing.T) {
	const v = "hunter2-very-secret"
	c := CHAP{Username: "alice", Password: NewSecret(v), MutualUsername: "arr", MutualPassword: NewSecret(v + "-in")}
	opts := LoginOptions{CHAP: &c}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		out = append(out, fmt.Sprintf(verb, c), fmt.Sprintf(verb, c.Password), fmt.Sprintf(verb, []any{c.Password}))
	}
	out = append(out, fmt.Sprintf("%+v", struct{ C CHAP }{c}), fmt.Sprintf("%+v", opts), c.String(), c.GoString())
	j, err := json.Marshal(struct {
		C CHAP
		S Secret
	}{c, c.Password})
	require.NoError(t, err)
	out = append(out, string(j))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "chap", c, "secret", c.Password)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "chap", c, "secret", c.Password)
	out = append(out, logs.String())
	for _, o := range out {
		assert.NotContains(t, o, "hunter2", "leaked in %q", o)
		assert.NotContains(t, o, fmt.Sprintf("%x", "hunter2"), "leaked hex in %q", o)
	}
	assert.Equal(t, v, c.Password.Reveal())
	assert.Contains(t, c.String(), `"alice"`)
}

func TestCHAPValidate(t *testing.T) {
	ok := CHAP{Username: "u", Password: NewSecret("0123456789ab")}
	assert.NoError(t, ok.Validate())
	for name, c := range map[string]CHAP{
		"no user":         {Password: NewSecret("x")},
		"no secret":       {Username: "u"},
		"newline":         {Username: "u", Password: NewSecret("a\nb")},
		"trailing blank":  {Username: "u", Password: NewSecret("abc ")},
		"too long":        {Username: "u", Password: NewSecret(strings.Repeat("x", 256))},
		"half mutual":     {Username: "u", Password: NewSecret("abc"), MutualUsername: "t"},
		"same both ways":  {Username: "u", Password: NewSecret("abc"), MutualUsername: "t", MutualPassword: NewSecret("abc")},
		"mutual no user":  {Username: "u", Password: NewSecret("abc"), MutualPassword: NewSecret("def")},
		"control in user": {Username: "u\tv", Password: NewSecret("abc")},
	} {
		err := c.Validate()
		assert.Error(t, err, name)
		if err != nil && !c.Password.IsZero() {
			assert.NotContains(t, err.Error(), c.Password.Reveal(), name)
		}
	}
	m := CHAP{Username: "u", Password: NewSecret("abc"), MutualUsername: "t", MutualPassword: NewSecret("def")}
	assert.NoError(t, m.Validate())
	assert.True(t, m.Mutual())
}

func TestCHAPFilesLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	me := os.Getuid()
	sec := write("secret", "initiator-secret-1\nignored second line\n", 0o600)
	mut := write("mutual", "target-secret-22\r\n", 0o400)
	open := write("open", "x\n", 0o644)
	group := write("group", "x\n", 0o640)
	empty := write("empty", "\n", 0o600)

	c, err := CHAPFiles{Owner: me, Username: "u", SecretFile: sec}.Load(nil)
	require.NoError(t, err)
	assert.Equal(t, "initiator-secret-1", c.Password.Reveal())
	assert.False(t, c.Mutual())

	c, err = CHAPFiles{Owner: me, Username: "u", SecretFile: sec, MutualUsername: "t", MutualSecretFile: mut}.Load(nil)
	require.NoError(t, err)
	assert.Equal(t, "target-secret-22", c.MutualPassword.Reveal())

	c, err = CHAPFiles{Owner: me, Username: "u", SecretFile: "-", MutualUsername: "t", MutualSecretFile: mut}.Load(strings.NewReader("from-stdin-secret\n"))
	require.NoError(t, err)
	assert.Equal(t, "from-stdin-secret", c.Password.Reveal())

	_, err = CHAPFiles{Owner: me, Username: "u", SecretFile: open}.Load(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chmod 600")
	// Group bits too: mode 0600 (or 0400) only.
	_, err = CHAPFiles{Owner: me, Username: "u", SecretFile: sec, MutualUsername: "t", MutualSecretFile: group}.Load(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chmod 600 "+group)
	_, err = CHAPFiles{Owner: me, Username: "u", SecretFile: empty}.Load(nil)
	assert.ErrorContains(t, err, "empty")
	_, err = CHAPFiles{Owner: me, Username: "u", SecretFile: filepath.Join(dir, "missing")}.Load(nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = CHAPFiles{Owner: me, Username: "u", SecretFile: "-", MutualUsername: "t", MutualSecretFile: "-"}.Load(strings.NewReader("a\n"))
	assert.ErrorContains(t, err, "only one")
	_, err = CHAPFiles{Owner: me, Username: "u", SecretFile: sec, MutualUsername: "t"}.Load(nil)
	assert.ErrorContains(t, err, "both")
	_, err = CHAPFiles{Owner: me, Username: "u", SecretFile: dir}.Load(nil)
	assert.ErrorContains(t, err, "not a regular file")

	// Owned by another user: refused, naming the chown.
	_, err = CHAPFiles{Owner: me + 1, Username: "u", SecretFile: sec}.Load(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("owned by uid %d, not %d; run chown %d %s", me, me+1, me+1, sec))
	require.NoError(t, CheckSecretFile(sec, me))
	assert.ErrorContains(t, CheckSecretFile(group, me), "chmod 600 "+group)
	assert.ErrorContains(t, CheckSecretFile(sec, me+1), "chown")
	assert.ErrorIs(t, CheckSecretFile(filepath.Join(dir, "missing"), me), os.ErrNotExist)

	// What lunferry persists: names and paths, no secret.
	j, err := json.Marshal(CHAPFiles{Owner: me, Username: "u", SecretFile: sec})
	require.NoError(t, err)
	assert.NotContains(t, string(j), "initiator-secret-1")
}
