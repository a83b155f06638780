package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lunferry/lunferry/internal/atomicfile"
)

// Store keeps one JSON file per volume under Dir/volumes. Files are written
// atomically: temp file, fsync, rename, fsync of the directory.
//
// Layout of the state directory:
//
//	lock                   flock held by the lunferry changing state
//	volumes/<name>.json    one Volume record each
//	metadata/<name>.meta   dm-clone metadata files (loop-backed)
//	logs/<name>.<phase>.log hook output
type Store struct {
	// Dir is the state directory.
	Dir string
}

func (s Store) volumesDir() string { return filepath.Join(s.Dir, "volumes") }

func (s Store) path(name string) string {
	return filepath.Join(s.volumesDir(), name+".json")
}

// MetadataDir is where file-backed metadata devices live.
func (s Store) MetadataDir() string { return filepath.Join(s.Dir, "metadata") }

// LogDir is where hook output is written.
func (s Store) LogDir() string { return filepath.Join(s.Dir, "logs") }

// Load reads one volume. A missing file is ErrNotFound; a file that does not
// parse is ErrStateCorrupt; a file from a newer version is ErrStateVersion.
func (s Store) Load(name string) (*Volume, error) {
	data, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("plan: volume %s: %w (see `lunferry volume list`)", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("plan: read state of %s: %w", name, err)
	}
	return decodeVolume(s.path(name), data)
}

func decodeVolume(path string, data []byte) (*Volume, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v Volume
	err := dec.Decode(&v)
	if err != nil || v.Version == 0 || v.Version > StateVersion {
		// What is wrong decides the message: read the version alone (a
		// file of a newer lunferry may hold fields this one does not know).
		var head struct {
			Version *int `json:"version"`
		}
		if herr := json.Unmarshal(data, &head); herr != nil || head.Version == nil {
			return nil, fmt.Errorf("plan: %s: %w: nothing was changed; restore the file from a backup or move it aside after checking the kernel objects named %s*",
				path, ErrStateCorrupt, Prefix)
		}
		if *head.Version > StateVersion {
			return nil, fmt.Errorf("plan: %s: %w (version %d, this lunferry reads up to %d): nothing was changed; use the newer lunferry",
				path, ErrStateVersion, *head.Version, StateVersion)
		}
		if err != nil {
			return nil, fmt.Errorf("plan: %s: %w: %v: nothing was changed; restore the file from a backup",
				path, ErrStateCorrupt, err)
		}
	}
	if v.Spec.Name == "" || v.Step == "" || filepath.Base(path) != v.Spec.Name+".json" {
		return nil, fmt.Errorf("plan: %s: %w: name or step missing or not matching the file name: nothing was changed",
			path, ErrStateCorrupt)
	}
	return &v, nil
}

// Names lists the volumes that have a state file, without reading them.
func (s Store) Names() ([]string, error) {
	entries, err := os.ReadDir(s.volumesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plan: read state directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, n)
		}
	}
	return out, nil
}

// LoadAll reads every volume, sorted by name. Any unreadable file fails the
// whole call: decisions that look at all volumes (a LUN used twice, a
// shared session) must not be made on partial knowledge.
func (s Store) LoadAll() ([]*Volume, error) {
	names, err := s.Names()
	if err != nil {
		return nil, err
	}
	var vols []*Volume
	for _, n := range names {
		p := filepath.Join(s.volumesDir(), n+".json")
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("plan: read %s: %w", p, err)
		}
		v, err := decodeVolume(p, data)
		if err != nil {
			return nil, err
		}
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].Spec.Name < vols[j].Spec.Name })
	return vols, nil
}

// Save writes v atomically and durably.
func (s Store) Save(v *Volume) error {
	v.Version = StateVersion
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("plan: encode state of %s: %w", v.Spec.Name, err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(s.volumesDir(), 0o700); err != nil {
		return stateDirErr(s.Dir, fmt.Errorf("plan: create state directory: %w", err))
	}
	return stateDirErr(s.Dir, writeFileAtomic(s.path(v.Spec.Name), data))
}

// Delete removes a volume's record, and the checkpoint of a verify of it
// that stopped (a later volume of the name is another migration).
func (s Store) Delete(name string) error {
	if err := s.removeVerifyCheckpoint(name); err != nil {
		return err
	}
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("plan: delete state of %s: %w", name, err)
	}
	return syncDir(s.volumesDir())
}

// writeFileAtomic replaces a state file durably (internal/atomicfile).
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("plan: save %s: %w", path, err)
	}
	return nil
}

// syncDir makes a removal in dir durable; a directory that is gone has
// nothing to make durable.
func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("plan: %w", err)
	}
	return nil
}
