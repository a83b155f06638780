// Package initiator drives open-iscsi for a lunferry proxy: it discovers the
// arrays' targets, keeps node records, logs in and out, and finds the block
// device of a LUN through sysfs (there may be no udev). The proxy reads the
// old array's LUN through it (marked read-only with SetReadOnly) and writes
// the new one.
//
// # API
//
//	c, err := initiator.New(initiator.Options{
//		Runner    Runner        // runs iscsiadm (ExecRunner{}); PrintRunner prints instead
//		Iscsiadm  string        // "iscsiadm"
//		SysRoot   string        // "/sys"
//		DevRoot   string        // "/dev"
//		NodeDBDir string        // DetectNodeDBDir(): /etc/iscsi/nodes or /var/lib/iscsi/nodes
//		LockDir   string        // "/run/lock/iscsi"
//		Records   RecordStore   // &FileRecords{NodeDBDir, LockDir}; PrintRecords prints instead
//		Iface     string        // "lunferry"
//	})
//	c.Discover(ctx, Portal, *CHAP) ([]Node, error)        // SendTargets, no node records
//	c.Login(ctx, Node, LoginOptions{CHAP, DiscoveryCHAP, Timeouts}) error   // CHAP: session only; DiscoveryCHAP: SendTargets only
//	c.Logout(ctx, Node) error                             // logout + delete the record
//	c.Rescan(ctx, Node) error
//	c.Sessions(ctx) ([]Session, error)                    // from /sys/class/iscsi_session
//	c.FindDisk(ctx, Node, lun uint64, timeout) (Disk, error)
//	c.SetReadOnly(path string) error                      // BLKROSET, checked with BLKROGET
//	c.ReadOnly(path string) (bool, error)
//	initiator.NewDryRun(w, prefix, Options) (*Client, error)
//
// A Portal is an address and port (ParsePortal reads "192.0.2.1:3260" and
// "[2001:db8::1]:3260"). A Node is (target IQN, Portal, TPGT); a TPGT of 0 is
// learnt by discovery at Login. Disk has Path, Name, Size (bytes),
// LogicalBlockSize, Major, Minor, HCTL and ID (the LU's WWID or serial).
//
// # Idempotence and errors
//
// Every operation can be repeated: Login returns nil when sysfs already
// shows the session (without calling iscsiadm) or when iscsiadm answers
// ISCSI_ERR_SESS_EXISTS (15); Logout returns nil when iscsiadm answers
// ISCSI_ERR_NO_OBJS_FOUND (21) for the session or the record. A failed
// iscsiadm call is an *IscsiadmError holding the arguments, the exit code
// (ExitCode, named as in open-iscsi's include/iscsi_err.h) and iscsiadm's
// own stderr; it matches a sentinel with errors.Is: ErrAuthFailed (24: bad
// CHAP credentials or not in the target's ACL; also 19 when mutual CHAP is
// configured, which is how iscsid reports a target failing it; a refused
// SendTargets discovery also matches ErrDiscoveryAuthFailed, whose message
// says the discovery credentials are the portal's, not the session's),
// ErrUnreachable (4, 8, 11, 33), ErrLoginRefused (5, 19), ErrNotFound
// (21), ErrSessionExists (15), ErrDaemon (18, 20), ErrDriver (12). The
// wrapping error adds what the admin should check next. Note that LIO
// answers a login to an unknown target name so that iscsiadm reports a
// connection timeout (8): Login avoids it by discovering first when the
// TPGT is unknown, and ErrTargetNotOffered lists what the portal offers.
//
// # Ownership
//
// lunferry binds its node records and sessions to its own open-iscsi iface
// record ("lunferry", Options.Iface). Records are per (target, portal,
// iface), so the admin's records for the same target (iface "default") are
// never rewritten, and lunferry's sessions are recognisable in sysfs
// (ifacename). Logout only ends sessions of that iface. Discover with CHAP
// needs a SendTargets discovery record (it holds the credentials); it is
// created for the call, marked with a "# lunferry" comment, and deleted
// after; a record for the portal that lunferry did not create is refused.
//
// # Secrets
//
// CHAP secrets are Secret values that print, format (any verb), marshal to
// JSON or text and log as "<redacted>"; Reveal returns them. CHAPFiles is
// what lunferry persists: user names and secret file paths ("-" for stdin);
// Load reads and validates them and refuses a secret file with any group
// or other permission bit (want 0600 or 0400) or not owned by root
// (CHAPFiles.Owner); CheckSecretFile checks a file without reading it, so
// that a step can refuse it before the window. Secrets never reach an argv: Login creates the record with
// "iscsiadm -m node -o new", sets timeouts and the auth method with
// "iscsiadm -o update", and then writes the user names and secrets into the
// record file through the RecordStore. FileRecords edits the file as
// open-iscsi's idbm parses it ("key = value" lines between "# BEGIN RECORD"
// and "# END RECORD"; a key runs to the first blank or '='), under
// open-iscsi's own lock (link of /run/lock/iscsi/lock to lock.write), and
// replaces it atomically with mode 0600. The record is found where
// idbm_rec_read looks: "<nodes>/<iqn>/<addr>,<port>" if that is a file,
// else "<nodes>/<iqn>/<addr>,<port>,<tpgt>/<iface>". A failed login and
// Logout delete the record, so no secret stays on disk longer than the
// session; while the session lives the record must stay, as a restarted
// iscsid reads it to adopt the session and log in again after an outage. (The kernel itself shows the session's CHAP names and secrets to
// root in /sys/class/iscsi_session/sessionN/{username,password,...}.)
//
// # Timeouts
//
// Timeouts are written to the node record before login. DefaultTimeouts:
// replacement_timeout 120 s (a short array outage queues I/O instead of
// failing it), noop_out_interval 5 s and noop_out_timeout 10 s (a dead path
// is noticed within 15 s), login_timeout 15 s with 4 tries
// (initial_login_retry_max). Configure them per array;
// Session reports the values in force (recovery_tmo, recv_tmo, ping_tmo)
// and SessionTo finds one node's session; Timeouts.Differences compares
// them with the wanted ones. Login keeps an existing session whatever its
// timeouts (it may carry I/O) and only warns when they differ.
//
// # Disks
//
// FindDisk looks for sessionN/device/target<H>:<C>:<T>/<H>:<C>:<T>:<LUN>/
// block/<sdX> under the session's sysfs directory, polling (the SCSI scan
// finishes after login returns; 25 ms in the lab VM) until its timeout,
// with one rescan halfway for LUNs mapped after login. Size comes from
// block/<sdX>/size (512-byte sectors) and the block size from
// queue/logical_block_size, the identity from the SCSI device's wwid or
// vpd_pg80. The node DevRoot/sdX is created with mknod when missing and must
// otherwise be that block device. KeepWriteBack overrides a write-through
// disk's cache type to "temporary write back" (see its comment for why).
//
// # Dry run
//
// NewDryRun (or Options{Runner: &PrintRunner{W: w}, Records:
// &PrintRecords{W: w}}) prints every iscsiadm command line, shell-quoted,
// and every record setting, secrets redacted, and runs nothing. Sysfs is
// still read, so a dry run sees the sessions that exist.
//
// # Tests
//
// Unit tests replay iscsiadm transcripts captured from open-iscsi 2.1.8
// (testdata/iscsiadm, capture-db.sh on any host, capture-vm.sh in the lab
// VM) and read fake sysfs trees (testdata/sysfs) built after a real
// session's layout (testdata/sysfs-session.txt). Kernel tests
// (initiator_kernel_test.go, vmtest.Require) build LIO targets with raw
// configfs writes in the lab VM and log in to them.
package initiator
