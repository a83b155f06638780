// Package logind holds off shutdown and sleep while lunferry is in a step
// the host must not be cut off in, with a systemd-logind inhibitor lock:
//
//	release, err := logind.Inhibitor{}.Inhibit("lunferry cutover of vol1")
//	if err == nil {
//		defer release()
//	}
package logind

import (
	"fmt"
	"os"

	"github.com/godbus/dbus/v5"
)

// Inhibitor takes a systemd-logind "block" inhibitor lock on shutdown and
// sleep (org.freedesktop.login1.Manager.Inhibit). The lock is the file
// descriptor logind returns: closing it releases the lock, and so does
// lunferry's death.
type Inhibitor struct{}

// Inhibit takes the lock, saying why; release drops it. Without a system
// bus or logind it returns an error; callers log it and go on.
func (Inhibitor) Inhibit(why string) (release func(), err error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("logind: inhibit shutdown: system bus: %w", err)
	}
	obj := conn.Object("org.freedesktop.login1", "/org/freedesktop/login1")
	var fd dbus.UnixFD
	call := obj.Call("org.freedesktop.login1.Manager.Inhibit", 0, "shutdown:sleep", "lunferry", why, "block")
	if call.Err != nil {
		conn.Close()
		return nil, fmt.Errorf("logind: inhibit shutdown: %w", call.Err)
	}
	if err := call.Store(&fd); err != nil {
		conn.Close()
		return nil, fmt.Errorf("logind: inhibit shutdown: reply: %w", err)
	}
	f := os.NewFile(uintptr(fd), "logind-inhibit")
	return func() {
		f.Close()
		conn.Close()
	}, nil
}
