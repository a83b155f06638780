package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// PrivateBinaries copies lunferry and lunferry-lab from src into a fresh
// directory the caller removes. The guest runs them from the host's disk
// over 9p: a rebuild of src during the run (`make e2e-bin` by another
// session) changed a running binary under it, and lunferry died with
// "fatal error: invalid pointer found on stack" in the lab.
func PrivateBinaries(src string) (string, error) {
	dir, err := os.MkdirTemp("", "lunferry-bench-bin-")
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	for _, name := range []string{"lunferry", "lunferry-lab"} {
		if err := copyFile(filepath.Join(src, name), filepath.Join(dir, name)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: copy %s: %w", src, err)
	}
	return nil
}
