package lab

import (
	"fmt"
	"path/filepath"
)

// CHAP is a set of CHAP credentials in the lab. Secrets are plain strings
// here, and the lab passes them on iscsiadm's command line: the lab plays
// the arrays and the host, whose secrets are not lunferry's to protect.
type CHAP struct {
	// User and Password are what the initiator presents.
	User     string `json:"user"`
	Password string `json:"password"`
	// MutualUser and MutualPassword, when set, are what the target
	// presents back (mutual CHAP).
	MutualUser     string `json:"mutualUser,omitempty"`
	MutualPassword string `json:"mutualPassword,omitempty"`
}

// discoveryAuth is LIO's SendTargets discovery authentication: one
// setting for every target of the kernel.
func discoveryAuth(configfs string) string {
	if configfs == "" {
		configfs = DefaultConfigFS
	}
	return filepath.Join(configfs, "iscsi", "discovery_auth")
}

// SetDiscoveryAuth makes every SendTargets discovery to LIO (configfs, ""
// for DefaultConfigFS) require c; nil lifts the requirement and clears the
// credentials (LIO's default: no CHAP on discovery). It is global: undo it
// when done.
func SetDiscoveryAuth(configfs string, c *CHAP) error {
	dir := discoveryAuth(configfs)
	want := map[string]string{"userid": "NULL", "password": "NULL", "userid_mutual": "NULL", "password_mutual": "NULL"}
	enforce := "0"
	if c != nil {
		want["userid"], want["password"] = c.User, c.Password
		if c.MutualUser != "" {
			want["userid_mutual"], want["password_mutual"] = c.MutualUser, c.MutualPassword
		}
		enforce = "1"
	}
	for _, f := range []string{"userid", "password", "userid_mutual", "password_mutual"} {
		if err := write(filepath.Join(dir, f), want[f]); err != nil {
			return fmt.Errorf("lab: discovery auth: %w", err)
		}
	}
	if err := write(filepath.Join(dir, "enforce_discovery_auth"), enforce); err != nil {
		return fmt.Errorf("lab: discovery auth: %w", err)
	}
	return nil
}

// setCHAP writes the array's CHAP credentials into the ACL directory acl
// (none when the array has no CHAP user).
func (a *Array) setCHAP(acl string) error {
	if a.CHAPUser == "" {
		return nil
	}
	mutualUser, mutualPassword := "NULL", "NULL"
	if a.CHAPMutualUser != "" {
		mutualUser, mutualPassword = a.CHAPMutualUser, a.CHAPMutualPassword
	}
	for f, v := range map[string]string{"userid": a.CHAPUser, "password": a.CHAPPassword,
		"userid_mutual": mutualUser, "password_mutual": mutualPassword} {
		if err := write(filepath.Join(acl, "auth", f), v); err != nil {
			return err
		}
	}
	return nil
}

// chapSettings are the iscsiadm -o update arguments that make an
// initiator's node record present c.
func chapSettings(c *CHAP) []string {
	s := []string{"-n", "node.session.auth.authmethod", "-v", "CHAP",
		"-n", "node.session.auth.username", "-v", c.User, "-n", "node.session.auth.password", "-v", c.Password}
	if c.MutualUser != "" {
		s = append(s, "-n", "node.session.auth.username_in", "-v", c.MutualUser,
			"-n", "node.session.auth.password_in", "-v", c.MutualPassword)
	}
	return s
}
