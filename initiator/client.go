package initiator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// DefaultIface is the open-iscsi interface record lunferry binds its node
// records and sessions to. Its own iface keeps lunferry's records apart
// from the admin's (records are per target, portal and iface), and makes
// its sessions recognisable in sysfs (ifacename).
const DefaultIface = "lunferry"

// Options configure a Client. Zero fields take the defaults shown.
type Options struct {
	// Runner runs iscsiadm (ExecRunner{}).
	Runner Runner
	// Iscsiadm is the iscsiadm program ("iscsiadm", looked up in PATH).
	Iscsiadm string
	// SysRoot is sysfs ("/sys").
	SysRoot string
	// DevRoot is where block device nodes live ("/dev").
	DevRoot string
	// NodeDBDir is open-iscsi's node record directory (DetectNodeDBDir():
	// /etc/iscsi/nodes on Debian and Ubuntu, /var/lib/iscsi/nodes on
	// RHEL-like systems).
	NodeDBDir string
	// LockDir is open-iscsi's lock directory (DefaultLockDir).
	LockDir string
	// Records edits records without argv (&FileRecords{NodeDBDir, LockDir}).
	Records RecordStore
	// Iface is the iface record lunferry's nodes are bound to (DefaultIface).
	Iface string
	// PollInterval is how often FindDisk looks for the disk (100 ms).
	PollInterval time.Duration
	// Logger receives one debug line per iscsiadm call (no output by default).
	Logger *slog.Logger
}

// Client drives open-iscsi: discovery, node records, login, logout, and
// finding the disks of a session in sysfs. It is safe for concurrent use
// as far as iscsiadm is.
type Client struct {
	run          Runner
	iscsiadm     string
	sysRoot      string
	devRoot      string
	records      RecordStore
	iface        string
	pollInterval time.Duration
	log          *slog.Logger
	dryRun       bool // the runner is a PrintRunner: iscsiadm answers nothing
}

// New returns a Client for o.
func New(o Options) (*Client, error) {
	c := &Client{
		run: o.Runner, iscsiadm: o.Iscsiadm, sysRoot: o.SysRoot, devRoot: o.DevRoot,
		records: o.Records, iface: o.Iface, pollInterval: o.PollInterval, log: o.Logger,
	}
	if c.run == nil {
		c.run = ExecRunner{}
	}
	_, c.dryRun = c.run.(*PrintRunner)
	if c.iscsiadm == "" {
		c.iscsiadm = "iscsiadm"
	}
	if c.sysRoot == "" {
		c.sysRoot = "/sys"
	}
	if c.devRoot == "" {
		c.devRoot = "/dev"
	}
	if c.records == nil {
		db := o.NodeDBDir
		if db == "" {
			db = DetectNodeDBDir()
		}
		c.records = &FileRecords{NodeDBDir: db, LockDir: o.LockDir}
	}
	if c.iface == "" {
		c.iface = DefaultIface
	}
	if err := validateIfaceName(c.iface); err != nil {
		return nil, err
	}
	if c.pollInterval <= 0 {
		c.pollInterval = 100 * time.Millisecond
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// NewDryRun returns a Client that prints every iscsiadm call and record
// write to w, prefixed with prefix, and makes none. Sysfs is still read
// (o.SysRoot): a dry run reports the sessions that exist. As discovery
// prints instead of answering, a dry-run Login of a node whose TPGT is
// unknown prints its commands with the portal group left out.
func NewDryRun(w io.Writer, prefix string, o Options) (*Client, error) {
	o.Runner = &PrintRunner{W: w, Prefix: prefix}
	o.Records = &PrintRecords{W: w, Prefix: prefix}
	return New(o)
}

// Iface returns the iface record name the client binds nodes to.
func (c *Client) Iface() string { return c.iface }

func validateIfaceName(s string) error {
	if s == "" || len(s) > 64 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("initiator: iface name %q: use 1-64 letters, digits, '.', '_' or '-'", s)
	}
	return nil
}

// iscsiadmRun runs iscsiadm with args and returns stdout, or an
// *IscsiadmError for a non-zero exit. Arguments never hold secrets.
func (c *Client) iscsiadmRun(ctx context.Context, args ...string) ([]byte, error) {
	start := time.Now()
	out, serr, code, err := c.run.Run(ctx, c.iscsiadm, args, nil)
	c.log.Debug("iscsiadm", "args", strings.Join(args, " "), "exit", code, "took", time.Since(start).Round(time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("initiator: %w", err)
	}
	if code != 0 {
		return out, &IscsiadmError{Args: args, Code: ExitCode(code), Stderr: cleanStderr(serr)}
	}
	return out, nil
}

// cleanStderr keeps iscsiadm's own lines and drops what other programs
// print through it (systemctl when iscsid is socket-activated).
func cleanStderr(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "",
			strings.HasPrefix(l, "System has not been booted with systemd"),
			strings.HasPrefix(l, "Failed to connect to bus"):
			continue
		}
		keep = append(keep, strings.TrimPrefix(l, "iscsiadm: "))
	}
	return strings.Join(keep, "; ")
}

// Discover asks the portal for its targets (SendTargets) and returns the
// nodes it offers. It creates no node records. With chap, a SendTargets
// discovery record holding the credentials is created for the call and
// deleted after; Discover refuses to replace a discovery record for the
// portal that lunferry did not create. A portal that offers no target
// returns no nodes and no error.
func (c *Client) Discover(ctx context.Context, p Portal, chap *CHAP) ([]Node, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if chap == nil {
		out, err := c.iscsiadmRun(ctx, "-m", "discovery", "-t", "sendtargets", "-p", p.String(), "-o", "nonpersistent")
		return c.discovered(p, out, err, false)
	}
	if err := chap.Validate(); err != nil {
		return nil, err
	}
	exists, ours, err := c.records.SendTargets(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("initiator: discover %s: %w", p, err)
	}
	if exists && !ours {
		return nil, fmt.Errorf("initiator: discover %s: a SendTargets discovery record for this portal exists that lunferry did not create; lunferry will not overwrite it: remove it (iscsiadm -m discoverydb -t sendtargets -p %s -o delete) or discover without CHAP", p, p)
	}
	db := []string{"-m", "discoverydb", "-t", "sendtargets", "-p", p.String()}
	if _, err := c.iscsiadmRun(ctx, append(db, "-o", "new")...); err != nil {
		return nil, wrapHint(fmt.Errorf("initiator: discover %s: create discovery record: %w", p, err))
	}
	defer func() {
		// Remove the record (and the secret in it) whatever happened.
		if _, err := c.iscsiadmRun(context.WithoutCancel(ctx), append(db, "-o", "delete")...); err != nil {
			c.log.Warn("could not remove discovery record", "portal", p.String(), "err", err)
		}
	}()
	if _, err := c.iscsiadmRun(ctx, append(db, "-o", "update", "-n", keyDiscAuthMethod, "-v", "CHAP")...); err != nil {
		return nil, wrapHint(fmt.Errorf("initiator: discover %s: set discovery auth: %w", p, err))
	}
	if err := c.records.UpdateSendTargets(ctx, p, chapSettings(chap, true)); err != nil {
		return nil, fmt.Errorf("initiator: discover %s: %w", p, err)
	}
	out, err := c.iscsiadmRun(ctx, append(db, "--discover", "-o", "nonpersistent")...)
	return c.discovered(p, out, err, true)
}

// discovered parses a discovery's answer; withCHAP says whether it
// offered credentials.
func (c *Client) discovered(p Portal, out []byte, err error, withCHAP bool) ([]Node, error) {
	if errors.Is(err, ErrNotFound) {
		return []Node{}, nil
	}
	var ie *IscsiadmError
	// A portal that wants no discovery CHAP (LIO's default) answers
	// offered credentials with a fatal login error (exit 19), one that
	// wants other credentials, or some, with exit 24.
	if errors.Is(err, ErrAuthFailed) || withCHAP && errors.As(err, &ie) && ie.Code == ExitFatalLogin {
		// Not the session's hint: a discovery's credentials are the
		// portal's own, and many arrays want none there.
		if withCHAP {
			return nil, fmt.Errorf("initiator: discover %s: %w: the portal refused the discovery CHAP credentials; check the discovery user name and secret, or give none if the array wants no CHAP on discovery: %w", p, ErrDiscoveryAuthFailed, err)
		}
		return nil, fmt.Errorf("initiator: discover %s: %w: the portal wants CHAP on SendTargets discovery; give discovery credentials (the array's discovery user name and secret, which may differ from its sessions'): %w", p, ErrDiscoveryAuthFailed, err)
	}
	if err != nil {
		return nil, wrapHint(fmt.Errorf("initiator: discover %s: %w", p, err))
	}
	nodes, err := parseDiscovery(out)
	if err != nil {
		return nil, fmt.Errorf("initiator: discover %s: %w", p, err)
	}
	return nodes, nil
}

// chapSettings renders credentials as record settings; nil clears them.
func chapSettings(chap *CHAP, discovery bool) []RecordSetting {
	ku, kp, kui, kpi := keyUsername, keyPassword, keyUsernameIn, keyPasswordIn
	if discovery {
		ku, kp, kui, kpi = keyDiscUsername, keyDiscPassword, keyDiscUsernameIn, keyDiscPasswordIn
	}
	if chap == nil {
		return []RecordSetting{PlainSetting(ku, ""), SecretSetting(kp, Secret{}), PlainSetting(kui, ""), SecretSetting(kpi, Secret{})}
	}
	return []RecordSetting{
		PlainSetting(ku, chap.Username),
		SecretSetting(kp, chap.Password),
		PlainSetting(kui, chap.MutualUsername),
		SecretSetting(kpi, chap.MutualPassword),
	}
}

// LoginOptions configure a login.
type LoginOptions struct {
	// CHAP holds the session credentials; nil logs in without
	// authentication.
	CHAP *CHAP
	// DiscoveryCHAP holds discovery credentials, used only when the node's
	// TPGT is unknown and Login discovers it.
	DiscoveryCHAP *CHAP
	// Timeouts are written to the node record before login; zero fields
	// take DefaultTimeouts.
	Timeouts Timeouts
}

// Login logs in to n and returns once the session is up; it does nothing
// (no iscsiadm call) if sysfs shows a session to n on the client's iface,
// but logs a warning when that session's timeouts differ from o's (see
// Timeouts.Differences; SessionTo lets a caller report them).
// When n.TPGT is 0 it is learnt by SendTargets discovery on n.Portal first.
//
// Steps: create the iface record, create the node record (iscsiadm -m node
// -o new; this resets a record lunferry left behind), set timeouts and the
// auth method with iscsiadm -o update, write the CHAP names and secrets
// into the record file through the RecordStore (never argv), then log in.
// A failed login deletes the record so that no secret stays on disk.
// Errors match ErrAuthFailed, ErrUnreachable, ErrLoginRefused, ErrDaemon or
// ErrDriver and carry iscsiadm's message and what to do next.
func (c *Client) Login(ctx context.Context, n Node, o LoginOptions) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if err := o.Timeouts.Validate(); err != nil {
		return err
	}
	if o.CHAP != nil {
		if err := o.CHAP.Validate(); err != nil {
			return err
		}
	}
	if s, err := c.findSession(n); err == nil && s != nil {
		c.log.Debug("already logged in", "node", n.String(), "sid", s.SID)
		if diff := o.Timeouts.Differences(*s); len(diff) > 0 {
			// Not logged out and in again: the session may carry I/O.
			c.log.Warn("session timeouts differ from the wanted ones; they apply at its next login",
				"node", n.String(), "sid", s.SID, "differences", strings.Join(diff, "; "))
		}
		return nil
	}
	if n.TPGT == 0 {
		resolved, err := c.resolveTPGT(ctx, n, o.DiscoveryCHAP)
		if err != nil {
			return err
		}
		n = resolved
	}
	if _, err := c.iscsiadmRun(ctx, "-m", "iface", "-I", c.iface, "-o", "new"); err != nil && !errors.Is(err, ErrSessionExists) {
		return wrapHint(fmt.Errorf("initiator: login %s: create iface %s: %w", n, c.iface, err))
	}
	node := c.nodeArgs(n)
	if _, err := c.iscsiadmRun(ctx, append(node, "-o", "new")...); err != nil {
		return wrapHint(fmt.Errorf("initiator: login %s: create node record: %w", n, err))
	}
	if err := c.configureNode(ctx, n, o); err != nil {
		c.deleteRecord(ctx, n)
		return err
	}
	_, err := c.iscsiadmRun(ctx, append(node, "--login")...)
	if err == nil || errors.Is(err, ErrSessionExists) {
		return nil
	}
	c.deleteRecord(ctx, n)
	var ie *IscsiadmError
	if o.CHAP != nil && o.CHAP.Mutual() && errors.As(err, &ie) && ie.Code == ExitFatalLogin {
		// iscsid reports a target that fails mutual CHAP as a fatal
		// login error (exit 19), not as an authentication failure.
		return fmt.Errorf("initiator: login %s: %w: the target did not prove the mutual CHAP credentials; check the mutual user name and secret: %w", n, ErrAuthFailed, err)
	}
	return wrapHint(fmt.Errorf("initiator: login %s: %w", n, err))
}

func (c *Client) configureNode(ctx context.Context, n Node, o LoginOptions) error {
	args := append(c.nodeArgs(n), "-o", "update")
	method := "None"
	if o.CHAP != nil {
		method = "CHAP"
	}
	for _, s := range append(o.Timeouts.settings(), PlainSetting(keyAuthMethod, method)) {
		args = append(args, "-n", s.Key, "-v", s.Value())
	}
	if _, err := c.iscsiadmRun(ctx, args...); err != nil {
		return wrapHint(fmt.Errorf("initiator: login %s: configure node record: %w", n, err))
	}
	if err := c.records.UpdateNode(ctx, n, c.iface, chapSettings(o.CHAP, false)); err != nil {
		return fmt.Errorf("initiator: login %s: write credentials: %w", n, err)
	}
	return nil
}

func (c *Client) deleteRecord(ctx context.Context, n Node) {
	if _, err := c.iscsiadmRun(context.WithoutCancel(ctx), append(c.nodeArgs(n), "-o", "delete")...); err != nil && !errors.Is(err, ErrNotFound) {
		c.log.Warn("could not delete node record", "node", n.String(), "err", err)
	}
}

func (c *Client) resolveTPGT(ctx context.Context, n Node, chap *CHAP) (Node, error) {
	nodes, err := c.Discover(ctx, n.Portal, chap)
	if err != nil {
		return n, fmt.Errorf("initiator: login %s: find portal group: %w", n.TargetIQN, err)
	}
	if c.dryRun && len(nodes) == 0 {
		// A dry run discovers nothing; go on with the portal group unknown
		// (iscsiadm -p without ",tpgt").
		return n, nil
	}
	var offered []string
	for _, d := range nodes {
		if strings.EqualFold(d.TargetIQN, n.TargetIQN) && d.Portal.Equal(n.Portal) {
			n.TPGT = d.TPGT
			return n, nil
		}
		offered = append(offered, d.String())
	}
	list := "nothing"
	if len(offered) > 0 {
		list = strings.Join(offered, ", ")
	}
	return n, fmt.Errorf("initiator: login %s via %s: %w (it offers %s): check the target name and portal, and that the array exports the LUN to this proxy", n.TargetIQN, n.Portal, ErrTargetNotOffered, list)
}

// nodeArgs selects n's record on the client's iface.
func (c *Client) nodeArgs(n Node) []string {
	return []string{"-m", "node", "-T", n.TargetIQN, "-p", n.portalArg(), "-I", c.iface}
}

// Logout ends the client's session to n, if there is one, and deletes
// n's node record (with any secret in it), if there is one. Sessions of
// other ifaces (the admin's) are left alone. With n.TPGT 0 every portal
// group of n's target on n.Portal matches.
func (c *Client) Logout(ctx context.Context, n Node) error {
	if err := n.Validate(); err != nil {
		return err
	}
	node := c.nodeArgs(n)
	if _, err := c.iscsiadmRun(ctx, append(node, "--logout")...); err != nil && !errors.Is(err, ErrNotFound) {
		return wrapHint(fmt.Errorf("initiator: logout %s: %w", n, err))
	}
	if _, err := c.iscsiadmRun(ctx, append(node, "-o", "delete")...); err != nil && !errors.Is(err, ErrNotFound) {
		return wrapHint(fmt.Errorf("initiator: logout %s: delete node record: %w", n, err))
	}
	return nil
}

// Rescan asks the client's sessions to n to scan for new LUNs.
func (c *Client) Rescan(ctx context.Context, n Node) error {
	if _, err := c.iscsiadmRun(ctx, append(c.nodeArgs(n), "--rescan")...); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("initiator: rescan %s: %w: log in first", n, ErrNoSession)
		}
		return wrapHint(fmt.Errorf("initiator: rescan %s: %w", n, err))
	}
	return nil
}
