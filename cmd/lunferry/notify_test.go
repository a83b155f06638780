package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestRunNotifiesSystemd: `lunferry run` under systemd (NOTIFY_SOCKET set)
// sends READY=1 once, after its restore, then WATCHDOG=1 every round.
func TestRunNotifiesSystemd(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	for _, step := range []string{"prepare", "cutover"} {
		c.ok("migrate", step, "vol1")
	}
	c.k.Reboot()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var out, errb bytes.Buffer
	code := -1
	wg.Add(1)
	go func() {
		defer wg.Done()
		ports := c.k.Ports()
		e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, ports: func(globals) plan.Ports { return ports }}
		code = run(ctx, e, []string{"lunferry", "--state-dir", c.dir, "-q", "run", "--interval", "10ms"})
	}()
	var got []string
	buf := make([]byte, 4096)
	for len(got) < 3 {
		// A guard against a hang, not a timed assertion.
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
		n, err := conn.Read(buf)
		require.NoError(t, err, "datagrams so far: %q; stderr %s", got, errb.String())
		got = append(got, string(buf[:n]))
	}
	cancel()
	wg.Wait()
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, []string{"READY=1", "WATCHDOG=1", "WATCHDOG=1"}, got)
}
