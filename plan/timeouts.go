package plan

import (
	"time"

	"github.com/lunferry/lunferry/initiator"
)

// SessionTimeouts are the proxy's iSCSI session timeouts towards one array
// (runbook: a LUN's "sessionTimeouts"). While the array is unreachable the
// proxy queues the I/O of that LUN (and so the host's I/O waiting on it)
// for Replacement, after noticing the dead path within NoopInterval +
// NoopTimeout; only then does it fail the I/O, which the host sees as an
// error. Zero fields take the defaults: 120 s, 5 s and 10 s, which out-wait
// a controller failover of most arrays (vendors' guides ask hosts for
// 120 s or less). Set Replacement above your array's longest failover and
// the host's timeouts above Replacement (README, "Host timeouts").
type SessionTimeouts struct {
	// Replacement is how long I/O is queued while the session recovers
	// (open-iscsi node.session.timeo.replacement_timeout): 10 s to 1 h.
	Replacement Duration `json:"replacement,omitempty"`
	// NoopInterval is the time between NOP-Out pings on an idle
	// connection (node.conn[0].timeo.noop_out_interval): 1 s to 60 s.
	NoopInterval Duration `json:"noopInterval,omitempty"`
	// NoopTimeout is how long a NOP-Out may go unanswered before the
	// connection counts as lost (node.conn[0].timeo.noop_out_timeout):
	// 1 s to 60 s.
	NoopTimeout Duration `json:"noopTimeout,omitempty"`
}

// Bounds of SessionTimeouts. Under 10 s of replacement a network blip or
// a controller failover becomes an I/O error; NOP-Outs cannot be switched
// off (0), as they are how a dead path is noticed.
var timeoutBounds = []struct {
	key      string
	min, max time.Duration
	get      func(*SessionTimeouts) Duration
}{
	{"replacement", 10 * time.Second, time.Hour, func(t *SessionTimeouts) Duration { return t.Replacement }},
	{"noopInterval", time.Second, time.Minute, func(t *SessionTimeouts) Duration { return t.NoopInterval }},
	{"noopTimeout", time.Second, time.Minute, func(t *SessionTimeouts) Duration { return t.NoopTimeout }},
}

// validate reports through bad what is wrong with t, the spec's field
// field ("old.sessionTimeouts"); nil takes the defaults.
func (t *SessionTimeouts) validate(field string, bad func(format string, args ...any)) {
	if t == nil {
		return
	}
	for _, b := range timeoutBounds {
		d := b.get(t).D()
		switch {
		case d == 0:
		case d%time.Second != 0:
			bad("%s.%s %s: give whole seconds (open-iscsi keeps seconds), e.g. %q", field, b.key, d, d.Round(time.Second).String())
		case d < b.min || d > b.max:
			bad("%s.%s %s: want %s to %s (leave it out for the default %s)", field, b.key, d, b.min, b.max, b.get(defaultSessionTimeouts()).D())
		}
	}
}

// defaultSessionTimeouts are the initiator's defaults in the runbook's form.
func defaultSessionTimeouts() *SessionTimeouts {
	d := initiator.DefaultTimeouts()
	return &SessionTimeouts{Replacement: Duration(d.ReplacementTimeout), NoopInterval: Duration(d.NoopOutInterval),
		NoopTimeout: Duration(d.NoopOutTimeout)}
}

// Initiator returns t as the initiator's timeouts, defaults filled in (nil
// is all defaults).
func (t *SessionTimeouts) Initiator() initiator.Timeouts {
	var o initiator.Timeouts
	if t != nil {
		o = initiator.Timeouts{ReplacementTimeout: t.Replacement.D(), NoopOutInterval: t.NoopInterval.D(), NoopOutTimeout: t.NoopTimeout.D()}
	}
	return o.WithDefaults()
}
