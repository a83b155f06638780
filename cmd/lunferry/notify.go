package main

import (
	"fmt"
	"io"

	"github.com/coreos/go-systemd/v22/daemon"
)

// sdNotifier tells systemd about `lunferry run` (lunferry.service is
// Type=notify): READY=1 once run's initial restore has finished, so units
// ordered after it start with the hosts served again, then WATCHDOG=1 once
// per control round, so a loop stuck in the kernel or on the lock gets the
// service restarted. Without NOTIFY_SOCKET (not under systemd) it sends
// nothing.
type sdNotifier struct {
	log io.Writer
	// ready is set once READY=1 was sent; warned once a send failed.
	ready, warned bool
}

// beat is plan.Options.Heartbeat.
func (n *sdNotifier) beat() {
	state := daemon.SdNotifyWatchdog
	if !n.ready {
		state = daemon.SdNotifyReady
	}
	// A failed READY=1 is sent again at the next round.
	if _, err := daemon.SdNotify(false, state); err != nil {
		if !n.warned {
			fmt.Fprintf(n.log, "lunferry: notify systemd (%s): %v\n", state, err)
			n.warned = true
		}
		return
	}
	n.ready = true
}
