package initiator

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// redacted is what a Secret prints as.
const redacted = "<redacted>"

// maxCHAPLen is the longest CHAP name or secret open-iscsi stores
// (AUTH_STR_MAX_LEN 256, including the terminating NUL).
const maxCHAPLen = 255

// Secret is a CHAP secret. It prints, formats, logs and marshals as
// "<redacted>" whatever the verb; only Reveal returns the value.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret's value. Call it only to hand the value to the
// node record writer.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns "<redacted>".
func (s Secret) String() string { return redacted }

// GoString returns "<redacted>".
func (s Secret) GoString() string { return redacted }

// Format writes "<redacted>" for every verb, so %x, %d or %#v cannot leak.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON returns "<redacted>".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText returns "<redacted>".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "<redacted>" for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// CHAP holds CHAP credentials for a login or a discovery. One-way CHAP
// (the target authenticates the initiator) needs Username and Password;
// mutual CHAP adds MutualUsername and MutualPassword, with which the
// initiator authenticates the target. Build it with CHAPFiles.Load rather
// than by hand: secrets come from files or stdin, never from flags.
type CHAP struct {
	// Username is the name the initiator presents (node.session.auth.username).
	Username string
	// Password is the initiator's secret (node.session.auth.password).
	Password Secret
	// MutualUsername is the name the target presents (…auth.username_in).
	MutualUsername string
	// MutualPassword is the target's secret (…auth.password_in).
	MutualPassword Secret
}

// Mutual reports whether the credentials include the target's.
func (c CHAP) Mutual() bool { return c.MutualUsername != "" || !c.MutualPassword.IsZero() }

// String renders the user names and hides the secrets.
func (c CHAP) String() string {
	if c.Mutual() {
		return fmt.Sprintf("CHAP{user %q, secret %s, mutual user %q, mutual secret %s}", c.Username, redacted, c.MutualUsername, redacted)
	}
	return fmt.Sprintf("CHAP{user %q, secret %s}", c.Username, redacted)
}

// GoString is String.
func (c CHAP) GoString() string { return c.String() }

// Validate checks that the credentials can be stored in an open-iscsi
// record and will be accepted by RFC 3720 targets.
func (c CHAP) Validate() error {
	if err := checkCHAPField("user name", c.Username, false); err != nil {
		return err
	}
	if err := checkCHAPField("secret", c.Password.Reveal(), true); err != nil {
		return err
	}
	if !c.Mutual() {
		return nil
	}
	if err := checkCHAPField("mutual user name", c.MutualUsername, false); err != nil {
		return err
	}
	if err := checkCHAPField("mutual secret", c.MutualPassword.Reveal(), true); err != nil {
		return err
	}
	if c.MutualPassword.Reveal() == c.Password.Reveal() {
		// RFC 3720 section 8.2.1: a secret must not be used in both
		// directions; targets refuse it.
		return fmt.Errorf("initiator: chap: the mutual secret equals the initiator secret; use a different secret for each direction")
	}
	return nil
}

// checkCHAPField never puts the value in its error when secret is set.
func checkCHAPField(what, v string, secret bool) error {
	show := func() string {
		if secret {
			return ""
		}
		return fmt.Sprintf(" %q", v)
	}
	switch {
	case v == "":
		return fmt.Errorf("initiator: chap: empty %s", what)
	case len(v) > maxCHAPLen:
		return fmt.Errorf("initiator: chap: %s%s is %d bytes, open-iscsi stores at most %d", what, show(), len(v), maxCHAPLen)
	case strings.TrimSpace(v) != v:
		// idbm strips leading and trailing blanks when it reads a record.
		return fmt.Errorf("initiator: chap: %s%s starts or ends with white space, which open-iscsi would strip", what, show())
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("initiator: chap: %s%s contains a control character (newline?)", what, show())
	}
	return nil
}

// CHAPFiles says where CHAP credentials come from. It is what lunferry
// keeps in its state and configuration: user names and the paths of the
// secret files, never a secret. A secret file holds the secret on its first
// line; "-" reads it from stdin instead.
type CHAPFiles struct {
	// Username is the initiator's CHAP user name.
	Username string `json:"username"`
	// SecretFile holds the initiator's CHAP secret.
	SecretFile string `json:"secret_file"`
	// MutualUsername is the target's CHAP user name (mutual CHAP only).
	MutualUsername string `json:"mutual_username,omitempty"`
	// MutualSecretFile holds the target's CHAP secret (mutual CHAP only).
	MutualSecretFile string `json:"mutual_secret_file,omitempty"`
	// Owner is the uid that must own the secret files: 0, root, as
	// lunferry runs as root (tests set their own uid).
	Owner int `json:"-"`
}

// Load reads the secrets and returns validated credentials. stdin is read
// for a file named "-"; at most one of the files may be "-".
func (f CHAPFiles) Load(stdin io.Reader) (*CHAP, error) {
	if f.SecretFile == "-" && f.MutualSecretFile == "-" {
		return nil, fmt.Errorf("initiator: chap: only one secret can come from stdin")
	}
	pw, err := readSecretFrom(f.SecretFile, stdin, f.Owner)
	if err != nil {
		return nil, err
	}
	c := &CHAP{Username: f.Username, Password: pw}
	if f.MutualUsername != "" || f.MutualSecretFile != "" {
		if f.MutualUsername == "" || f.MutualSecretFile == "" {
			return nil, fmt.Errorf("initiator: chap: mutual CHAP needs both a mutual user name and a mutual secret file")
		}
		mpw, err := readSecretFrom(f.MutualSecretFile, stdin, f.Owner)
		if err != nil {
			return nil, err
		}
		c.MutualUsername, c.MutualPassword = f.MutualUsername, mpw
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func readSecretFrom(path string, stdin io.Reader, owner int) (Secret, error) {
	if path == "-" {
		if stdin == nil {
			return Secret{}, fmt.Errorf("initiator: chap: secret file is \"-\" but no stdin was given")
		}
		return ReadSecret(stdin)
	}
	return ReadSecretFile(path, owner)
}

// ReadSecret reads a secret from the first line of r (a trailing "\n" or
// "\r\n" is dropped; nothing else is trimmed).
func ReadSecret(r io.Reader) (Secret, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, 4096), 4096)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return Secret{}, fmt.Errorf("initiator: read chap secret: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return Secret{}, fmt.Errorf("initiator: read chap secret: empty; put the secret on the first line")
	}
	return NewSecret(line), nil
}

// ReadSecretFile reads a secret from the first line of the file at path.
// It refuses a file that another user than owner (0: root) could read or
// replace (CheckSecretFile): the secret would not be one.
func ReadSecretFile(path string, owner int) (Secret, error) {
	if path == "" {
		return Secret{}, fmt.Errorf("initiator: chap: no secret file given")
	}
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, fmt.Errorf("initiator: chap secret file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Secret{}, fmt.Errorf("initiator: chap secret file: %w", err)
	}
	if err := secretFileProblem(path, st, owner); err != nil {
		return Secret{}, err
	}
	s, err := ReadSecret(f)
	if err != nil {
		return Secret{}, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

// CheckSecretFile reports, without reading it, why the file at path cannot
// hold a secret: missing, not a regular file, any group or other permission
// bit set (want mode 0600 or 0400), or not owned by owner (0: root). The
// error names the chmod or chown that fixes it.
func CheckSecretFile(path string, owner int) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("initiator: chap secret file: %w", err)
	}
	return secretFileProblem(path, st, owner)
}

func secretFileProblem(path string, st os.FileInfo, owner int) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("initiator: chap secret file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("initiator: chap secret file %s: mode %04o lets other users read or change it; run chmod 600 %s", path, uint32(perm), path)
	}
	if uid, ok := fileOwner(st); !ok || uid != owner {
		who := "root"
		if owner != 0 {
			who = strconv.Itoa(owner)
		}
		return fmt.Errorf("initiator: chap secret file %s: owned by uid %d, not %s; run chown %s %s", path, uid, who, who, path)
	}
	return nil
}
