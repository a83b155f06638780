package plan

import (
	"fmt"
	"os"

	"github.com/godbus/dbus/v5"
)

// NoInhibitor inhibits nothing.
type NoInhibitor struct{}

// Inhibit implements Inhibitor.
func (NoInhibitor) Inhibit(string) (func(), error) { return func() {}, nil }

// LogindInhibitor takes a systemd-logind "block" inhibitor lock on
// shutdown and sleep (org.freedesktop.login1.Manager.Inhibit) while a
// host-facing step runs. The lock is the returned file descriptor: closing
// it releases the lock, and so does lunferry's death.
type LogindInhibitor struct{}

// Inhibit implements Inhibitor. Without a system bus or logind it returns
// an error; callers log it and go on.
func (LogindInhibitor) Inhibit(why string) (func(), error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("plan: inhibit shutdown: system bus: %w", err)
	}
	obj := conn.Object("org.freedesktop.login1", "/org/freedesktop/login1")
	var fd dbus.UnixFD
	call := obj.Call("org.freedesktop.login1.Manager.Inhibit", 0, "shutdown:sleep", "lunferry", why, "block")
	if call.Err != nil {
		conn.Close()
		return nil, fmt.Errorf("plan: inhibit shutdown: logind: %w", call.Err)
	}
	if err := call.Store(&fd); err != nil {
		conn.Close()
		return nil, fmt.Errorf("plan: inhibit shutdown: logind reply: %w", err)
	}
	f := os.NewFile(uintptr(fd), "logind-inhibit")
	return func() {
		f.Close()
		conn.Close()
	}, nil
}
