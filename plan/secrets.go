package plan

import "fmt"

// SecretFiles checks the files that hold CHAP secrets, so that a step
// refuses one before the window rather than when it is loaded inside it.
type SecretFiles interface {
	// Check reports a secret file that is missing, not a regular file,
	// readable or writable by group or others, or not owned by root; the
	// error names the chmod or chown that fixes it.
	Check(path string) error
}

// secretFile is one secret file of a spec and the runbook field naming it.
type secretFile struct{ field, path string }

// secretFiles lists every secret file the spec names: the arrays' session
// and discovery CHAP, and the export's.
func (s *Spec) secretFiles() []secretFile {
	var out []secretFile
	for _, c := range []struct {
		field string
		chap  *CHAP
	}{{"old.chap", s.Old.CHAP}, {"old.discoveryChap", s.Old.DiscoveryCHAP}, {"new.chap", s.New.CHAP},
		{"new.discoveryChap", s.New.DiscoveryCHAP}, {"export.chap", s.Export.CHAP}} {
		if c.chap == nil {
			continue
		}
		for _, f := range c.chap.files() {
			if f.path != "" {
				out = append(out, secretFile{c.field + "." + f.key, f.path})
			}
		}
	}
	return out
}

// checkSecrets finds, before the window, secret files that would be
// refused when loaded. Without a SecretFiles port nothing is checked here
// (the ports that load secrets still refuse them).
func (p *Planner) checkSecrets(s *Spec) error {
	if p.o.Ports.Secrets == nil {
		return nil
	}
	for _, f := range s.secretFiles() {
		if err := p.o.Ports.Secrets.Check(f.path); err != nil {
			return fmt.Errorf("plan: volume %s: %w: %s %s: %v: fix it before the window", s.Name, ErrInvalidSpec, f.field, f.path, err)
		}
	}
	return nil
}
