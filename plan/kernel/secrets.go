package kernel

import (
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
)

// SecretFiles implements plan.SecretFiles with initiator.CheckSecretFile:
// a secret file must be a regular file of mode 0600 (or 0400) owned by
// Owner.
type SecretFiles struct {
	// Owner is the uid that must own secret files: 0, root, as lunferry
	// runs as root (tests set their own uid).
	Owner int
}

// Check implements plan.SecretFiles.
func (s SecretFiles) Check(path string) error { return initiator.CheckSecretFile(path, s.Owner) }

// loadCHAP reads the secrets c names (nil: no CHAP), refusing files not
// owned by owner or open to other users.
func loadCHAP(c *plan.CHAP, owner int) (*initiator.CHAP, error) {
	if c == nil {
		return nil, nil
	}
	return initiator.CHAPFiles{Username: c.Username, SecretFile: c.SecretFile, MutualUsername: c.MutualUsername,
		MutualSecretFile: c.MutualSecretFile, Owner: owner}.Load(nil)
}

// drySecrets reports in a dry run the secret files the real run would
// refuse, without refusing them: a rehearsal may run as another user, on
// files not yet installed.
type drySecrets struct{ d *dry }

// Check implements plan.SecretFiles.
func (s drySecrets) Check(path string) error {
	if err := initiator.CheckSecretFile(path, 0); err != nil {
		s.d.printf("%v (the real run refuses it)", err)
	}
	return nil
}
