package lio

import (
	"errors"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Session is an initiator logged in to a target, as LIO reports it in the
// ACL's info file (or in the TPG's dynamic_sessions for initiators without
// an ACL, which lunferry's secure defaults never admit).
type Session struct {
	// InitiatorIQN is the initiator's iSCSI name.
	InitiatorIQN string
	// TPG is the portal group tag the session is on.
	TPG uint16
	// Alias is the initiator's alias, if it sent one.
	Alias string
	// ID is LIO's session id.
	ID uint32
	// State is LIO's session state, e.g. "LOGGED_IN".
	State string
	// Addresses are the initiator addresses of the session's connections.
	Addresses []string
	// Dynamic is set for sessions through a generated (demo mode) ACL.
	Dynamic bool
}

// Sessions lists the initiators logged in to target iqn. A missing target
// has no sessions.
func (r *Root) Sessions(iqn string) ([]Session, error) {
	t := r.Target(iqn)
	tpgs, err := t.TPGs()
	if err != nil {
		return nil, err
	}
	var out []Session
	for _, g := range tpgs {
		acls, err := g.NodeACLs()
		if err != nil {
			return nil, err
		}
		for _, a := range acls {
			info, err := r.fs().ReadFile(path.Join(a.Path(), "info"))
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we looked
			}
			if err != nil {
				return nil, errf("read session of %s on tpg %s: %w", a.InitiatorIQN, g, err)
			}
			if s, ok := parseACLInfo(string(info)); ok {
				s.TPG = g.Tag
				out = append(out, s)
			}
		}
		dyn, err := r.fs().ReadFile(path.Join(g.Path(), "dynamic_sessions"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, errf("read dynamic sessions of tpg %s: %w", g, err)
		}
		for _, line := range strings.Split(string(dyn), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, Session{InitiatorIQN: line, TPG: g.Tag, Dynamic: true})
			}
		}
	}
	return out, nil
}

// parseACLInfo parses <acl>/info (lio_target_nacl_info_show in
// drivers/target/iscsi/iscsi_target_configfs.c):
//
//	No active iSCSI Session for Initiator Endpoint: <iqn>
//
// or
//
//	InitiatorName: <iqn>
//	InitiatorAlias: <alias>
//	LIO Session ID: <id>   ISID: 0x...  TSIH: <n>  SessionType: Normal
//	Session State: TARG_SESS_STATE_LOGGED_IN
//	...
//	CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN
//	   Address 127.0.0.1 TCP  StatSN: 0x...
func parseACLInfo(info string) (Session, bool) {
	var s Session
	found := false
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "No active"):
			return Session{}, false
		case strings.HasPrefix(line, "InitiatorName:"):
			s.InitiatorIQN = strings.TrimSpace(strings.TrimPrefix(line, "InitiatorName:"))
			found = true
		case strings.HasPrefix(line, "InitiatorAlias:"):
			s.Alias = strings.TrimSpace(strings.TrimPrefix(line, "InitiatorAlias:"))
		case strings.HasPrefix(line, "LIO Session ID:"):
			f := strings.Fields(strings.TrimPrefix(line, "LIO Session ID:"))
			if len(f) > 0 {
				id, _ := strconv.ParseUint(f[0], 10, 32)
				s.ID = uint32(id)
			}
		case strings.HasPrefix(line, "Session State:"):
			st := strings.TrimSpace(strings.TrimPrefix(line, "Session State:"))
			st = strings.TrimPrefix(st, "TARG_SESS_STATE_")
			s.State = strings.TrimPrefix(st, "TARG_SESS_")
		case strings.HasPrefix(line, "Address "):
			if f := strings.Fields(line); len(f) >= 2 {
				s.Addresses = append(s.Addresses, f[1])
			}
		}
	}
	return s, found
}
