package initiator

import (
	"errors"
	"fmt"
	"strings"
)

// ExitCode is an iscsiadm exit status. The values are open-iscsi's
// enum iscsi_error_list (include/iscsi_err.h); they have been stable since
// open-iscsi 2.0-872 and are the same in 2.1.x.
type ExitCode int

// iscsiadm exit codes lunferry branches on, named as in include/iscsi_err.h.
const (
	ExitSuccess             ExitCode = 0  // ISCSI_SUCCESS
	ExitGeneric             ExitCode = 1  // ISCSI_ERR: unknown error
	ExitSessNotFound        ExitCode = 2  // ISCSI_ERR_SESS_NOT_FOUND
	ExitNoMem               ExitCode = 3  // ISCSI_ERR_NOMEM (also "could not read iface info")
	ExitTrans               ExitCode = 4  // ISCSI_ERR_TRANS: connection failure
	ExitLogin               ExitCode = 5  // ISCSI_ERR_LOGIN: login failure
	ExitIDBM                ExitCode = 6  // ISCSI_ERR_IDBM: node database failure
	ExitInval               ExitCode = 7  // ISCSI_ERR_INVAL: invalid parameter
	ExitTransTimeout        ExitCode = 8  // ISCSI_ERR_TRANS_TIMEOUT: connection timed out
	ExitInternal            ExitCode = 9  // ISCSI_ERR_INTERNAL
	ExitLogout              ExitCode = 10 // ISCSI_ERR_LOGOUT: logout failure
	ExitPDUTimeout          ExitCode = 11 // ISCSI_ERR_PDU_TIMEOUT
	ExitTransNotFound       ExitCode = 12 // ISCSI_ERR_TRANS_NOT_FOUND: iscsi_tcp not loaded
	ExitAccess              ExitCode = 13 // ISCSI_ERR_ACCESS: daemon access denied
	ExitTransCaps           ExitCode = 14 // ISCSI_ERR_TRANS_CAPS
	ExitSessExists          ExitCode = 15 // ISCSI_ERR_SESS_EXISTS: session already logged in
	ExitInvalidMgmtReq      ExitCode = 16 // ISCSI_ERR_INVALID_MGMT_REQ
	ExitISNSUnavailable     ExitCode = 17 // ISCSI_ERR_ISNS_UNAVAILABLE
	ExitIscsidCommErr       ExitCode = 18 // ISCSI_ERR_ISCSID_COMM_ERR
	ExitFatalLogin          ExitCode = 19 // ISCSI_ERR_FATAL_LOGIN: non-retryable login failure
	ExitIscsidNotConn       ExitCode = 20 // ISCSI_ERR_ISCSID_NOTCONN: iscsid not running
	ExitNoObjsFound         ExitCode = 21 // ISCSI_ERR_NO_OBJS_FOUND: no records/sessions/portals
	ExitSysfsLookup         ExitCode = 22 // ISCSI_ERR_SYSFS_LOOKUP
	ExitHostNotFound        ExitCode = 23 // ISCSI_ERR_HOST_NOT_FOUND
	ExitLoginAuthFailed     ExitCode = 24 // ISCSI_ERR_LOGIN_AUTH_FAILED: authentication or authorization
	ExitISNSQuery           ExitCode = 25 // ISCSI_ERR_ISNS_QUERY
	ExitISNSRegFailed       ExitCode = 26 // ISCSI_ERR_ISNS_REG_FAILED
	ExitOpNotSupp           ExitCode = 27 // ISCSI_ERR_OP_NOT_SUPP
	ExitBusy                ExitCode = 28 // ISCSI_ERR_BUSY
	ExitAgain               ExitCode = 29 // ISCSI_ERR_AGAIN
	ExitUnknownDiscovery    ExitCode = 30 // ISCSI_ERR_UNKNOWN_DISCOVERY_TYPE
	ExitChildTerminated     ExitCode = 31 // ISCSI_ERR_CHILD_TERMINATED
	ExitSessionNotConnected ExitCode = 32 // ISCSI_ERR_SESSION_NOT_CONNECTED
	ExitReqTimedOut         ExitCode = 33 // ISCSI_ERR_REQ_TIMEDOUT: iscsid request timed out
)

var exitNames = map[ExitCode]string{
	ExitSuccess: "ISCSI_SUCCESS", ExitGeneric: "ISCSI_ERR", ExitSessNotFound: "ISCSI_ERR_SESS_NOT_FOUND",
	ExitNoMem: "ISCSI_ERR_NOMEM", ExitTrans: "ISCSI_ERR_TRANS", ExitLogin: "ISCSI_ERR_LOGIN",
	ExitIDBM: "ISCSI_ERR_IDBM", ExitInval: "ISCSI_ERR_INVAL", ExitTransTimeout: "ISCSI_ERR_TRANS_TIMEOUT",
	ExitInternal: "ISCSI_ERR_INTERNAL", ExitLogout: "ISCSI_ERR_LOGOUT", ExitPDUTimeout: "ISCSI_ERR_PDU_TIMEOUT",
	ExitTransNotFound: "ISCSI_ERR_TRANS_NOT_FOUND", ExitAccess: "ISCSI_ERR_ACCESS",
	ExitTransCaps: "ISCSI_ERR_TRANS_CAPS", ExitSessExists: "ISCSI_ERR_SESS_EXISTS",
	ExitInvalidMgmtReq: "ISCSI_ERR_INVALID_MGMT_REQ", ExitISNSUnavailable: "ISCSI_ERR_ISNS_UNAVAILABLE",
	ExitIscsidCommErr: "ISCSI_ERR_ISCSID_COMM_ERR", ExitFatalLogin: "ISCSI_ERR_FATAL_LOGIN",
	ExitIscsidNotConn: "ISCSI_ERR_ISCSID_NOTCONN", ExitNoObjsFound: "ISCSI_ERR_NO_OBJS_FOUND",
	ExitSysfsLookup: "ISCSI_ERR_SYSFS_LOOKUP", ExitHostNotFound: "ISCSI_ERR_HOST_NOT_FOUND",
	ExitLoginAuthFailed: "ISCSI_ERR_LOGIN_AUTH_FAILED", ExitISNSQuery: "ISCSI_ERR_ISNS_QUERY",
	ExitISNSRegFailed: "ISCSI_ERR_ISNS_REG_FAILED", ExitOpNotSupp: "ISCSI_ERR_OP_NOT_SUPP",
	ExitBusy: "ISCSI_ERR_BUSY", ExitAgain: "ISCSI_ERR_AGAIN",
	ExitUnknownDiscovery: "ISCSI_ERR_UNKNOWN_DISCOVERY_TYPE", ExitChildTerminated: "ISCSI_ERR_CHILD_TERMINATED",
	ExitSessionNotConnected: "ISCSI_ERR_SESSION_NOT_CONNECTED", ExitReqTimedOut: "ISCSI_ERR_REQ_TIMEDOUT",
}

// String returns the open-iscsi name of the code, e.g. "ISCSI_ERR_SESS_EXISTS".
func (c ExitCode) String() string {
	if n, ok := exitNames[c]; ok {
		return n
	}
	return fmt.Sprintf("exit status %d", int(c))
}

// Sentinel errors callers branch on with errors.Is. An *IscsiadmError
// matches the sentinel of its exit code.
var (
	// ErrAuthFailed: the target refused the login for authentication or
	// authorization (wrong CHAP credentials, or this initiator is not in the
	// target's ACL). iscsiadm exit 24.
	ErrAuthFailed = errors.New("iscsi login refused: authentication or authorization failed")
	// ErrDiscoveryAuthFailed: the portal refused the SendTargets discovery
	// for authentication: it wants discovery CHAP and none was given, or
	// not the credentials given, or none at all (LIO's default answers
	// offered credentials with exit 19). Discovery credentials are the
	// portal's, not the session's. The iscsiadm error's own sentinel
	// (ErrAuthFailed, or ErrLoginRefused for exit 19) matches too.
	ErrDiscoveryAuthFailed = errors.New("sendtargets discovery refused: authentication failed")
	// ErrUnreachable: the portal could not be reached or did not answer
	// (iscsiadm exit 4, 8, 11, 33).
	ErrUnreachable = errors.New("iscsi portal unreachable")
	// ErrLoginRefused: the target refused the login for another reason
	// than authentication (e.g. unknown target name; exit 5, 19).
	ErrLoginRefused = errors.New("iscsi login refused by target")
	// ErrNotFound: iscsiadm found no matching record, session or portal
	// (exit 21). Idempotent operations treat it as done.
	ErrNotFound = errors.New("iscsi object not found")
	// ErrSessionExists: a session to the node already exists (exit 15).
	// Login treats it as success.
	ErrSessionExists = errors.New("iscsi session already exists")
	// ErrDaemon: iscsid is not running or does not answer (exit 18, 20).
	ErrDaemon = errors.New("iscsid not reachable")
	// ErrDriver: the iscsi_tcp transport is not loaded (exit 12).
	ErrDriver = errors.New("iscsi transport driver not loaded")
	// ErrNoSession: lunferry found no session to the node in sysfs.
	ErrNoSession = errors.New("no iscsi session to node")
	// ErrDiskNotFound: the session exists but the LUN's disk did not appear
	// in time.
	ErrDiskNotFound = errors.New("iscsi disk not found")
	// ErrTargetNotOffered: the portal's SendTargets answer does not list the
	// target.
	ErrTargetNotOffered = errors.New("target not offered by portal")
	// ErrNotImplemented is returned on platforms without open-iscsi.
	ErrNotImplemented = errors.New("initiator: not implemented on this platform")
)

// IscsiadmError is a failed iscsiadm call: its arguments (which never hold
// secrets), its exit code and what it printed on stderr, which is
// iscsiadm's own explanation.
type IscsiadmError struct {
	// Args are iscsiadm's arguments, without the program name.
	Args []string
	// Code is the exit status.
	Code ExitCode
	// Stderr is iscsiadm's error output, trimmed of noise lines.
	Stderr string
}

// Error renders "iscsiadm -m node ... : exit 24 (ISCSI_ERR_LOGIN_AUTH_FAILED): <stderr>".
func (e *IscsiadmError) Error() string {
	msg := e.Stderr
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("iscsiadm %s: exit %d (%s): %s", strings.Join(e.Args, " "), int(e.Code), e.Code, msg)
}

// Is matches the sentinel error of the exit code.
func (e *IscsiadmError) Is(target error) bool {
	s := sentinelFor(e.Code)
	return s != nil && s == target
}

func sentinelFor(c ExitCode) error {
	switch c {
	case ExitLoginAuthFailed:
		return ErrAuthFailed
	case ExitTrans, ExitTransTimeout, ExitPDUTimeout, ExitReqTimedOut:
		return ErrUnreachable
	case ExitLogin, ExitFatalLogin:
		return ErrLoginRefused
	case ExitNoObjsFound:
		return ErrNotFound
	case ExitSessExists:
		return ErrSessionExists
	case ExitIscsidCommErr, ExitIscsidNotConn:
		return ErrDaemon
	case ExitTransNotFound:
		return ErrDriver
	}
	return nil
}

// hint tells the admin what to do next for an iscsiadm failure.
func hint(c ExitCode) string {
	switch c {
	case ExitLoginAuthFailed:
		return "check the CHAP user name and secret files, and that the target's ACL admits this proxy's initiator name (/etc/iscsi/initiatorname.iscsi)"
	case ExitTrans, ExitTransTimeout, ExitPDUTimeout, ExitReqTimedOut:
		// LIO answers a login to an unknown target name in a way iscsid
		// reports as a connection timeout (exit 8), so name it too.
		return "check the portal address and port, the target name, the network path to the array and that the array's iSCSI service is up"
	case ExitLogin, ExitFatalLogin:
		return "check the target IQN, that the array exports it on this portal, and with mutual CHAP the target's user name and secret"
	case ExitIscsidCommErr, ExitIscsidNotConn:
		return "start iscsid (systemctl start iscsid) and retry"
	case ExitTransNotFound:
		return "load the iscsi_tcp module (modprobe iscsi_tcp) and retry"
	case ExitAccess:
		return "run lunferry as root"
	}
	return ""
}

// wrapHint adds the admin hint of an *IscsiadmError to err.
func wrapHint(err error) error {
	var ie *IscsiadmError
	if errors.As(err, &ie) {
		if h := hint(ie.Code); h != "" {
			return fmt.Errorf("%w; %s", err, h)
		}
	}
	return err
}
