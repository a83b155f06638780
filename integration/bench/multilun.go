package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lunferry/lunferry/integration/lab"
)

// multiLUN is a lab array with many LUNs behind one target (lab.Array has
// one): file-backed storage objects under one fileio HBA, LUN i over the
// i-th, every initiator admitted (dynamic ACLs, read-write), no CHAP.
type multiLUN struct {
	name, iqn, portal, dir string
	hba                    int
	size                   int64
	n                      int
}

const configfs = lab.DefaultConfigFS

func (m *multiLUN) so(i int) string {
	return filepath.Join(configfs, "core", fmt.Sprintf("fileio_%d", m.hba), fmt.Sprintf("labscale-%s-%d", m.name, i))
}

func (m *multiLUN) tpg() string { return filepath.Join(configfs, "iscsi", m.iqn, "tpgt_1") }

// up builds the target: n storage objects, n LUNs, the portal, dynamic
// ACLs, enabled.
func (m *multiLUN) up() error {
	for i := 0; i < m.n; i++ {
		so := m.so(i)
		if err := os.MkdirAll(so, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		file := filepath.Join(m.dir, fmt.Sprintf("%s-%d.img", m.name, i))
		if err := cfgWrite(filepath.Join(so, "control"), fmt.Sprintf("fd_dev_name=%s,fd_dev_size=%d", file, m.size)); err != nil {
			return err
		}
		if err := cfgWrite(filepath.Join(so, "enable"), "1"); err != nil {
			return err
		}
		lun := filepath.Join(m.tpg(), "lun", fmt.Sprintf("lun_%d", i))
		if err := os.MkdirAll(lun, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := os.Symlink(so, filepath.Join(lun, "labscale_so")); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(m.tpg(), "np", m.portal), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for _, a := range [][2]string{{"generate_node_acls", "1"}, {"cache_dynamic_acls", "1"}, {"demo_mode_write_protect", "0"}, {"authentication", "0"}} {
		if err := cfgWrite(filepath.Join(m.tpg(), "attrib", a[0]), a[1]); err != nil {
			return err
		}
	}
	return cfgWrite(filepath.Join(m.tpg(), "enable"), "1")
}

func cfgWrite(path, v string) error {
	if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
		return fmt.Errorf("bench: configfs: %w", err)
	}
	return nil
}

// down takes the target away again, in the reverse order of up, and
// deletes the backing files: the arrays' files live in the guest's RAM,
// which the groups after scale need.
func (m *multiLUN) down() error {
	var errs []error
	rm := func(p string) {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("bench: %s target: %w", m.name, err))
		}
	}
	if _, err := os.Stat(m.tpg()); err == nil {
		if err := cfgWrite(filepath.Join(m.tpg(), "enable"), "0"); err != nil {
			errs = append(errs, err)
		}
	}
	for i := 0; i < m.n; i++ {
		lun := filepath.Join(m.tpg(), "lun", fmt.Sprintf("lun_%d", i))
		rm(filepath.Join(lun, "labscale_so"))
		rm(lun)
	}
	rm(filepath.Join(m.tpg(), "np", m.portal))
	rm(m.tpg())
	rm(filepath.Join(configfs, "iscsi", m.iqn))
	for i := 0; i < m.n; i++ {
		rm(m.so(i))
		rm(filepath.Join(m.dir, fmt.Sprintf("%s-%d.img", m.name, i)))
	}
	rm(filepath.Dir(m.so(0)))
	return errors.Join(errs...)
}
