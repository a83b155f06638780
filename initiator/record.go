package initiator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lunferry/lunferry/internal/atomicfile"
)

// RecordSetting is one "key = value" line of an open-iscsi record. A
// secret setting prints its value as "<redacted>".
type RecordSetting struct {
	// Key is the record key, e.g. "node.session.auth.password".
	Key    string
	value  string
	secret bool
}

// PlainSetting is a setting whose value may be shown.
func PlainSetting(key, value string) RecordSetting { return RecordSetting{Key: key, value: value} }

// SecretSetting is a setting whose value is never shown.
func SecretSetting(key string, s Secret) RecordSetting {
	return RecordSetting{Key: key, value: s.Reveal(), secret: true}
}

// IsSecret reports whether the value is secret.
func (s RecordSetting) IsSecret() bool { return s.secret }

// Value returns the value, or "<redacted>" for a secret.
func (s RecordSetting) Value() string {
	if s.secret && s.value != "" {
		return redacted
	}
	return s.value
}

// Reveal returns the value, secret or not; for RecordStore implementations.
func (s RecordSetting) Reveal() string { return s.value }

// String renders "key = value" with secrets redacted; an empty value
// (which removes the key) renders as "key = <empty>", as iscsiadm shows it.
func (s RecordSetting) String() string {
	v := s.Value()
	if v == "" {
		v = "<empty>"
	}
	return s.Key + " = " + v
}

// Format renders String for every verb, so no verb can print the secret.
func (s RecordSetting) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// RecordStore edits open-iscsi records without putting values on a
// command line: this is how CHAP secrets reach open-iscsi without
// appearing in any process's argv. The Client creates records with
// iscsiadm first; a RecordStore only changes records that exist.
type RecordStore interface {
	// UpdateNode sets settings in the node record of n bound to iface. A
	// setting with an empty value removes the key.
	UpdateNode(ctx context.Context, n Node, iface string, settings []RecordSetting) error
	// SendTargets reports whether a SendTargets discovery record for p
	// exists, and whether lunferry created it.
	SendTargets(ctx context.Context, p Portal) (exists, ours bool, err error)
	// UpdateSendTargets sets settings in the SendTargets record of p and
	// marks the record as lunferry's.
	UpdateSendTargets(ctx context.Context, p Portal, settings []RecordSetting) error
}

// Default locations of open-iscsi's database and lock.
const (
	// DebianDBRoot is where Debian and Ubuntu build open-iscsi's database.
	DebianDBRoot = "/etc/iscsi"
	// RedHatDBRoot is where RHEL, Fedora and SUSE-like systems keep it.
	RedHatDBRoot = "/var/lib/iscsi"
	// DefaultLockDir is open-iscsi's LOCK_DIR.
	DefaultLockDir = "/run/lock/iscsi"
)

// DetectNodeDBDir returns the node directory of open-iscsi's database on
// this system: the "nodes" directory under /etc/iscsi or /var/lib/iscsi,
// whichever has one (or, before any record exists, has an "ifaces" or
// "send_targets" directory); /var/lib/iscsi when only it exists; else
// /etc/iscsi/nodes. The path is compiled into iscsiadm (ISCSI_DB_ROOT) and
// cannot be asked for; Client.Login checks that the record it creates shows
// up where expected.
func DetectNodeDBDir() string { return detectNodeDBDir(DebianDBRoot, RedHatDBRoot) }

func detectNodeDBDir(debian, redhat string) string {
	isDir := func(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }
	for _, sub := range []string{"nodes", "ifaces", "send_targets"} {
		for _, root := range []string{debian, redhat} {
			if isDir(filepath.Join(root, sub)) {
				return filepath.Join(root, "nodes")
			}
		}
	}
	if isDir(redhat) {
		return filepath.Join(redhat, "nodes")
	}
	return filepath.Join(debian, "nodes")
}

// FileRecords is the RecordStore over open-iscsi's database files. It
// takes open-iscsi's own lock (link(2) of LOCK_DIR/lock to
// LOCK_DIR/lock.write, as idbm_lock does) around each read-modify-write,
// and replaces files atomically with mode 0600.
type FileRecords struct {
	// NodeDBDir is the database's "nodes" directory; "send_targets" is its
	// sibling.
	NodeDBDir string
	// LockDir is open-iscsi's lock directory (DefaultLockDir).
	LockDir string
	// LockTimeout bounds the wait for the lock (30 s, as iscsiadm).
	LockTimeout time.Duration

	mu sync.Mutex
}

// NodeRecordPath returns the file holding the record of n bound to iface,
// looked up as open-iscsi's idbm_rec_read does: an old-style record file
// "<iqn>/<addr>,<port>" first, else "<iqn>/<addr>,<port>,<tpgt>/<iface>".
// It returns an error wrapping fs.ErrNotExist when there is none.
func (r *FileRecords) NodeRecordPath(n Node, iface string) (string, error) {
	base := filepath.Join(r.NodeDBDir, n.TargetIQN, n.Portal.addr()+","+strconv.Itoa(int(n.Portal.port())))
	if st, err := os.Stat(base); err == nil && st.Mode().IsRegular() {
		return base, nil
	}
	if n.TPGT > 0 {
		p := filepath.Join(base+","+strconv.Itoa(n.TPGT), iface)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("initiator: node record %s: %w", p, err)
		}
		return p, nil
	}
	matches, err := filepath.Glob(filepath.Join(globQuote(base)+",*", globQuote(iface)))
	if err != nil {
		return "", fmt.Errorf("initiator: node record %s: %w", base, err)
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("initiator: node record %s,*/%s: %w", base, iface, fs.ErrNotExist)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("initiator: node records for %s in several portal groups (%s); give the tpgt", n, strings.Join(matches, ", "))
}

func globQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SendTargetsRecordPath returns the file of the SendTargets record of p:
// "<db root>/send_targets/<addr>,<port>/st_config".
func (r *FileRecords) SendTargetsRecordPath(p Portal) string {
	return filepath.Join(filepath.Dir(r.NodeDBDir), "send_targets",
		p.addr()+","+strconv.Itoa(int(p.port())), "st_config")
}

// UpdateNode implements RecordStore.
func (r *FileRecords) UpdateNode(ctx context.Context, n Node, iface string, settings []RecordSetting) error {
	path, err := r.NodeRecordPath(n, iface)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w; iscsiadm created no record there: if open-iscsi keeps its database elsewhere on this system, set the node database directory", err)
		}
		return err
	}
	return r.edit(ctx, path, settings, false)
}

// SendTargets implements RecordStore.
func (r *FileRecords) SendTargets(_ context.Context, p Portal) (bool, bool, error) {
	b, err := os.ReadFile(r.SendTargetsRecordPath(p))
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("initiator: read discovery record: %w", err)
	}
	return true, bytes.Contains(b, []byte("\n"+recordMarker+"\n")), nil
}

// UpdateSendTargets implements RecordStore.
func (r *FileRecords) UpdateSendTargets(ctx context.Context, p Portal, settings []RecordSetting) error {
	return r.edit(ctx, r.SendTargetsRecordPath(p), settings, true)
}

func (r *FileRecords) edit(ctx context.Context, path string, settings []RecordSetting, mark bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("initiator: read record: %w", err)
	}
	if err := atomicfile.Write(path, editRecord(old, settings, mark), 0o600); err != nil {
		return fmt.Errorf("initiator: write record %s: %w", path, err)
	}
	return nil
}

// lock takes open-iscsi's database lock as idbm_lock does: create
// LOCK_DIR/lock, then link it to LOCK_DIR/lock.write until the link
// succeeds; unlock removes lock.write.
func (r *FileRecords) lock(ctx context.Context) (func(), error) {
	dir := r.LockDir
	if dir == "" {
		dir = DefaultLockDir
	}
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return nil, fmt.Errorf("initiator: open-iscsi lock dir: %w", err)
	}
	lockFile, writeFile := filepath.Join(dir, "lock"), filepath.Join(dir, "lock.write")
	f, err := os.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("initiator: open-iscsi lock: %w", err)
	}
	f.Close()
	timeout := r.LockTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		err := os.Link(lockFile, writeFile)
		if err == nil {
			return func() { _ = os.Remove(writeFile) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("initiator: open-iscsi lock: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("initiator: open-iscsi database locked for %s (%s exists): wait for other iscsiadm calls to finish, or remove the file if no iscsiadm runs", timeout, writeFile)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("initiator: wait for open-iscsi lock: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// recordMarker is the comment lunferry adds to the discovery records it
// creates, so it can tell them from the admin's. open-iscsi skips comment
// lines when it reads a record.
const recordMarker = "# lunferry: created by lunferry, removed after discovery"

// editRecord returns content with each setting applied: an existing
// "key = value" line for the key is replaced (a later duplicate removed),
// a missing key is inserted before "# END RECORD" (or appended), and a
// setting with an empty value removes the key, as open-iscsi omits empty
// values. Keys are parsed as idbm_recinfo_config does: the name runs to
// the first blank or '='. With mark, the lunferry marker comment is added
// after "# BEGIN RECORD". Other lines are kept byte for byte.
func editRecord(content []byte, settings []RecordSetting, mark bool) []byte {
	lines := strings.SplitAfter(string(content), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	want := make(map[string]string, len(settings))
	var order []string
	for _, s := range settings {
		if _, dup := want[s.Key]; !dup {
			order = append(order, s.Key)
		}
		want[s.Key] = s.Reveal()
	}
	done := map[string]bool{}
	var out []string
	endIdx := -1
	hasMarker := false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == recordMarker {
			hasMarker = true
		}
		if strings.HasPrefix(t, "# END RECORD") && endIdx < 0 {
			endIdx = len(out)
		}
		if t == "" || strings.HasPrefix(t, "#") {
			out = append(out, l)
			continue
		}
		key := t
		if i := strings.IndexFunc(t, func(r rune) bool { return r == '=' || r == ' ' || r == '\t' }); i >= 0 {
			key = t[:i]
		}
		v, ok := want[key]
		if !ok {
			out = append(out, l)
			continue
		}
		if done[key] || v == "" {
			done[key] = true
			continue
		}
		done[key] = true
		out = append(out, key+" = "+v+"\n")
	}
	var add []string
	for _, k := range order {
		if !done[k] && want[k] != "" {
			add = append(add, k+" = "+want[k]+"\n")
		}
	}
	if endIdx < 0 {
		if len(out) > 0 && !strings.HasSuffix(out[len(out)-1], "\n") {
			out[len(out)-1] += "\n"
		}
		out = append(out, add...)
	} else {
		out = append(out[:endIdx], append(add, out[endIdx:]...)...)
	}
	if mark && !hasMarker {
		i := 0
		if len(out) > 0 && strings.HasPrefix(strings.TrimSpace(out[0]), "# BEGIN RECORD") {
			i = 1
		}
		out = append(out[:i], append([]string{recordMarker + "\n"}, out[i:]...)...)
	}
	return []byte(strings.Join(out, ""))
}

// PrintRecords is a dry-run RecordStore: it writes what it would set to W,
// secrets redacted, and changes nothing. It reports no discovery records.
type PrintRecords struct {
	// W receives one line per setting.
	W io.Writer
	// Prefix starts every line, e.g. "would set: ".
	Prefix string

	mu sync.Mutex
}

// UpdateNode prints the settings.
func (p *PrintRecords) UpdateNode(_ context.Context, n Node, iface string, settings []RecordSetting) error {
	return p.print(fmt.Sprintf("node record %s iface %s", n, iface), settings)
}

// SendTargets reports no record.
func (p *PrintRecords) SendTargets(context.Context, Portal) (bool, bool, error) {
	return false, false, nil
}

// UpdateSendTargets prints the settings.
func (p *PrintRecords) UpdateSendTargets(_ context.Context, portal Portal, settings []RecordSetting) error {
	return p.print("discovery record sendtargets "+portal.String(), settings)
}

func (p *PrintRecords) print(what string, settings []RecordSetting) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range settings {
		if _, err := fmt.Fprintf(p.W, "%s%s: %s\n", p.Prefix, what, s); err != nil {
			return fmt.Errorf("dry run: %w", err)
		}
	}
	return nil
}
