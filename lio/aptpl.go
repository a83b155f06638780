package lio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The kernel (target_core_pr.c, 6.1) writes a storage object's persistent
// reservations registered with APTPL (Activate Persist Through Power Loss)
// to <dbroot>/pr/aptpl_<unit serial> on every change, but never reads the
// file back: whoever recreates the storage object must hand each
// registration to pr/res_aptpl_metadata before a LUN exports it (the
// kernel refuses it afterwards), and the kernel then attaches it when an
// ACL of the same initiator maps the LUN of the same target, TPG and LUN
// number. rtslib does the same when targetcli restores its configuration.

// aptplPath returns the file where the kernel keeps the APTPL
// registrations of the storage object whose unit serial is serial.
func (r *Root) aptplPath(serial string) (string, error) {
	dbroot, err := r.readAttr(path.Join(r.dir(), "dbroot"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // a kernel without dbroot has no APTPL files
	}
	if err != nil {
		return "", errf("read dbroot: %w", err)
	}
	return filepath.Join(dbroot, "pr", "aptpl_"+serial), nil
}

// loadAPTPL writes the APTPL registrations kept for the unit serial serial
// (none when the kernel kept no file) to the new storage object at so,
// which no LUN exports yet.
func (r *Root) loadAPTPL(so, serial string) error {
	if serial == "" {
		return nil
	}
	file, err := r.aptplPath(serial)
	if err != nil || file == "" {
		return err
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errf("read persistent reservations kept through power loss: %w", err)
	}
	regs, err := parseAPTPL(string(b))
	if err != nil {
		return fmt.Errorf("%w: %s: %v: the host's persistent reservations cannot be restored; move the file away to export without them", ErrInvalidConfig, file, err)
	}
	for _, reg := range regs {
		if err := r.writeAttr(path.Join(so, "pr", "res_aptpl_metadata"), reg); err != nil {
			return errf("restore a persistent reservation from %s: %w", file, err)
		}
	}
	return nil
}

// parseAPTPL returns the registrations of an APTPL file, each as the
// comma-separated line pr/res_aptpl_metadata takes. The file holds "No
// Registrations or Reservations" or one block per registration: a line
// "PR_REG_START: n", key=value lines (initiator_fabric, initiator_node,
// initiator_sid when the initiator gave one, sa_res_key, res_holder,
// res_type, res_scope, res_all_tg_pt, mapped_lun, target_fabric,
// target_node, tpgt, port_rtpi, target_lun) and "PR_REG_END: n". The
// kernel writes the file with its terminating NUL.
func parseAPTPL(text string) ([]string, error) {
	var regs []string
	var cur []string
	open := false
	for _, line := range strings.Split(strings.TrimRight(text, "\x00\n"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line == "No Registrations or Reservations":
		case strings.HasPrefix(line, "PR_REG_START:"):
			if open {
				return nil, errors.New("PR_REG_START inside a registration")
			}
			open, cur = true, nil
		case strings.HasPrefix(line, "PR_REG_END:"):
			if !open || len(cur) == 0 {
				return nil, errors.New("PR_REG_END without a registration")
			}
			regs, open = append(regs, strings.Join(cur, ",")), false
		case open && strings.Contains(line, "=") && !strings.Contains(line, ","):
			cur = append(cur, line)
		default:
			return nil, fmt.Errorf("unexpected line %q", line)
		}
	}
	if open {
		return nil, errors.New("a registration without PR_REG_END")
	}
	return regs, nil
}
