package initiator

import (
	"fmt"
	"strconv"
	"time"
)

// Timeouts are the session timeouts lunferry writes into a node record
// before login. A proxy wants a short array outage to queue I/O rather
// than fail it: NOP-Outs notice a dead path within NoopOutInterval +
// NoopOutTimeout, and the SCSI layer then holds I/O for ReplacementTimeout
// while iscsid reconnects; only after that are commands failed upward.
// Configure them per array. A zero field takes the default of
// DefaultTimeouts; NOP-Outs cannot be switched off, as they are how a dead
// path is noticed.
type Timeouts struct {
	// ReplacementTimeout is how long I/O is queued while a session
	// recovers (node.session.timeo.replacement_timeout).
	ReplacementTimeout time.Duration `json:"replacement_timeout,omitempty"`
	// NoopOutInterval is the time between NOP-Out pings
	// (node.conn[0].timeo.noop_out_interval).
	NoopOutInterval time.Duration `json:"noop_out_interval,omitempty"`
	// NoopOutTimeout is how long a NOP-Out may go unanswered before the
	// connection is declared dead (node.conn[0].timeo.noop_out_timeout).
	NoopOutTimeout time.Duration `json:"noop_out_timeout,omitempty"`
	// LoginTimeout bounds one login attempt
	// (node.conn[0].timeo.login_timeout).
	LoginTimeout time.Duration `json:"login_timeout,omitempty"`
	// LoginRetries is how many times a first login is tried before Login
	// fails (node.session.initial_login_retry_max); an unreachable portal
	// fails after about LoginRetries × LoginTimeout.
	LoginRetries int `json:"login_retries,omitempty"`
}

// DefaultTimeouts returns lunferry's proxy defaults: I/O queued for 120 s
// during an array outage, a dead path noticed within 15 s, 15 s per login
// attempt and 4 attempts (open-iscsi's built-in default; Debian's
// iscsid.conf says 8), so an unreachable array fails a first login within
// about a minute.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		ReplacementTimeout: 120 * time.Second,
		NoopOutInterval:    5 * time.Second,
		NoopOutTimeout:     10 * time.Second,
		LoginTimeout:       15 * time.Second,
		LoginRetries:       4,
	}
}

// WithDefaults returns t with zero fields set from DefaultTimeouts.
func (t Timeouts) WithDefaults() Timeouts {
	d := DefaultTimeouts()
	if t.ReplacementTimeout == 0 {
		t.ReplacementTimeout = d.ReplacementTimeout
	}
	if t.NoopOutInterval == 0 {
		t.NoopOutInterval = d.NoopOutInterval
	}
	if t.NoopOutTimeout == 0 {
		t.NoopOutTimeout = d.NoopOutTimeout
	}
	if t.LoginTimeout == 0 {
		t.LoginTimeout = d.LoginTimeout
	}
	if t.LoginRetries == 0 {
		t.LoginRetries = d.LoginRetries
	}
	return t
}

// Validate checks that every duration is zero or a positive whole number
// of seconds (open-iscsi stores seconds) and that LoginRetries is not
// negative.
func (t Timeouts) Validate() error {
	if t.LoginRetries < 0 {
		return fmt.Errorf("initiator: login retries %d is negative", t.LoginRetries)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"replacement timeout", t.ReplacementTimeout},
		{"noop-out interval", t.NoopOutInterval},
		{"noop-out timeout", t.NoopOutTimeout},
		{"login timeout", t.LoginTimeout},
	} {
		if f.d < 0 {
			return fmt.Errorf("initiator: %s %s is negative", f.name, f.d)
		}
		if f.d%time.Second != 0 {
			return fmt.Errorf("initiator: %s %s is not a whole number of seconds", f.name, f.d)
		}
	}
	return nil
}

// Differences lists how the timeouts in force on session s (sysfs:
// recovery_tmo, and its first connection's recv_tmo and ping_tmo) differ
// from t after defaults, one "name: live, want" line each; nil when they
// match. The login timeout and retries are not visible once logged in.
// A record change applies at the next login only: iscsid keeps a live
// session's values through its recoveries.
func (t Timeouts) Differences(s Session) []string {
	t = t.WithDefaults()
	var out []string
	for _, f := range []struct {
		key        string
		live, want time.Duration
	}{
		{"replacement_timeout", s.RecoveryTimeout, t.ReplacementTimeout},
		{"noop_out_interval", s.NoopOutInterval, t.NoopOutInterval},
		{"noop_out_timeout", s.NoopOutTimeout, t.NoopOutTimeout},
	} {
		if f.live != f.want {
			out = append(out, fmt.Sprintf("%s %s live, %s wanted", f.key, secs(f.live)+"s", secs(f.want)+"s"))
		}
	}
	return out
}

// Node record keys (open-iscsi usr/idbm_fields.h).
const (
	keyReplacementTimeout = "node.session.timeo.replacement_timeout"
	keyNoopOutInterval    = "node.conn[0].timeo.noop_out_interval"
	keyNoopOutTimeout     = "node.conn[0].timeo.noop_out_timeout"
	keyLoginTimeout       = "node.conn[0].timeo.login_timeout"
	keyLoginRetries       = "node.session.initial_login_retry_max"
	keyAuthMethod         = "node.session.auth.authmethod"
	keyUsername           = "node.session.auth.username"
	keyPassword           = "node.session.auth.password"
	keyUsernameIn         = "node.session.auth.username_in"
	keyPasswordIn         = "node.session.auth.password_in"

	keyDiscAuthMethod = "discovery.sendtargets.auth.authmethod"
	keyDiscUsername   = "discovery.sendtargets.auth.username"
	keyDiscPassword   = "discovery.sendtargets.auth.password"
	keyDiscUsernameIn = "discovery.sendtargets.auth.username_in"
	keyDiscPasswordIn = "discovery.sendtargets.auth.password_in"
)

func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// settings renders t (after defaults) as node record settings.
func (t Timeouts) settings() []RecordSetting {
	t = t.WithDefaults()
	return []RecordSetting{
		PlainSetting(keyReplacementTimeout, secs(t.ReplacementTimeout)),
		PlainSetting(keyNoopOutInterval, secs(t.NoopOutInterval)),
		PlainSetting(keyNoopOutTimeout, secs(t.NoopOutTimeout)),
		PlainSetting(keyLoginTimeout, secs(t.LoginTimeout)),
		PlainSetting(keyLoginRetries, strconv.Itoa(t.LoginRetries)),
	}
}
