package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is one line of a manifest: a file the host wrote and made durable
// (file and directory fsynced) before the line was appended.
//
// Line format: "<sha256 hex> <size> <session> <path relative to the mount>".
type Entry struct {
	// Sum is the file's SHA-256, hex.
	Sum string
	// Size is the file's length in bytes.
	Size int64
	// Session is the writer session that wrote it (0: populate).
	Session int
	// Path is relative to the filesystem's root.
	Path string
}

func (e Entry) line() string {
	return fmt.Sprintf("%s %d %d %s\n", e.Sum, e.Size, e.Session, e.Path)
}

// ReadManifest reads a manifest; later lines for the same path win. A
// last line cut short by a power failure is ignored.
func ReadManifest(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lab: manifest: %w", err)
	}
	defer f.Close()
	idx := map[string]int{}
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 4 || len(fl[0]) != 64 {
			continue
		}
		size, err1 := strconv.ParseInt(fl[1], 10, 64)
		sess, err2 := strconv.Atoi(fl[2])
		if err1 != nil || err2 != nil {
			continue
		}
		e := Entry{Sum: fl[0], Size: size, Session: sess, Path: fl[3]}
		if i, ok := idx[e.Path]; ok {
			out[i] = e
			continue
		}
		idx[e.Path] = len(out)
		out = append(out, e)
	}
	return out, sc.Err()
}

// manifestAppender appends durable lines to a manifest.
type manifestAppender struct{ f *os.File }

func openManifest(path string) (*manifestAppender, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lab: manifest: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: manifest: %w", err)
	}
	return &manifestAppender{f: f}, nil
}

func (m *manifestAppender) add(e Entry) error {
	if _, err := m.f.WriteString(e.line()); err != nil {
		return fmt.Errorf("lab: manifest: %w", err)
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("lab: manifest: %w", err)
	}
	return nil
}

func (m *manifestAppender) close() error { return m.f.Close() }

// content fills b with the deterministic content of one file.
func content(b []byte, seed uint64, session, n int) {
	r := rand.New(rand.NewPCG(seed^uint64(session)<<32, uint64(n)+0x6c6162))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func sumBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// WriteDurable writes data to path (created or truncated), fsyncs it and
// its directory: a record that must survive a power cut of the lab.
func WriteDurable(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SumFile returns the SHA-256 and size of a file or block device, read
// past the page cache (its clean pages are dropped first), so the bytes
// come from the device underneath.
func SumFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Populate writes the volume's initial content under dir ("base/"): count
// small files of 4-256 KiB and one large file of bigBytes, all recorded in
// the manifest as session 0.
func Populate(dir, manifest string, count int, bigBytes int64, seed uint64) (files int, bytes int64, err error) {
	m, err := openManifest(manifest)
	if err != nil {
		return 0, 0, err
	}
	defer m.close()
	r := rand.New(rand.NewPCG(seed, 1))
	write := func(rel string, size int64, n int) error {
		b := make([]byte, size)
		content(b, seed, 0, n)
		if err := WriteDurable(filepath.Join(dir, rel), b); err != nil {
			return fmt.Errorf("lab: populate %s: %w", rel, err)
		}
		files++
		bytes += size
		return m.add(Entry{Sum: sumBytes(b), Size: size, Session: 0, Path: rel})
	}
	for i := 0; i < count; i++ {
		size := int64(4096 + r.IntN(252*1024))
		if err := write(fmt.Sprintf("base/d%02d/f%04d.dat", i%8, i), size, i); err != nil {
			return files, bytes, err
		}
	}
	if bigBytes > 0 {
		if err := write("base/big.dat", bigBytes, count); err != nil {
			return files, bytes, err
		}
	}
	return files, bytes, nil
}

// WriterStats are a writer session's counters, saved to its stats file.
type WriterStats struct {
	// Session numbers writer runs (1, 2, ...).
	Session int `json:"session"`
	// Files and Bytes count files written and made durable.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// Rewrites counts files rewritten in place, made durable, once the
	// filesystem was full.
	Rewrites int64 `json:"rewrites,omitempty"`
	// Forgotten counts manifest files absent when the run started and so
	// not read back (ForgetMissing).
	Forgotten int64 `json:"forgotten,omitempty"`
	// Readbacks counts files read back from the device and compared.
	Readbacks int64 `json:"readbacks"`
	// Errors counts failed writes, fsyncs and reads; Mismatches counts
	// read-backs whose checksum differed.
	Errors     int64 `json:"errors"`
	Mismatches int64 `json:"mismatches"`
	// LastError is the last error seen.
	LastError string `json:"lastError,omitempty"`
	// MaxWriteMs is the longest write+fsync of one file, in milliseconds,
	// and MaxWriteAt when it ended: a stall the host saw (e.g. during the
	// live table swap of finalize).
	MaxWriteMs float64   `json:"maxWriteMs"`
	MaxWriteAt time.Time `json:"maxWriteAt,omitempty"`
	// MaxReadMs is the longest read-back of one file past the page cache,
	// in milliseconds, and MaxReadAt when it ended: a stall the host saw
	// reading (e.g. a region the proxy must first fetch from the old
	// array).
	MaxReadMs float64   `json:"maxReadMs"`
	MaxReadAt time.Time `json:"maxReadAt,omitempty"`
	// Started and Stopped bound the run; Stopped is zero while running.
	Started time.Time `json:"started"`
	Stopped time.Time `json:"stopped,omitempty"`
}

// Writer is the application on the host: it keeps creating files with
// known content under Dir, each written, fsynced (with its directory), read
// back past the page cache and compared, then recorded in the manifest. It
// also re-reads earlier files now and then. When the filesystem is fuller
// than MaxUsed it rewrites a writer file in place with the bytes it already
// holds instead (same size, so a torn rewrite leaves the same content): the
// host keeps writing to the device however long a test runs.
type Writer struct {
	// Dir is the mounted filesystem's root.
	Dir string
	// Manifest is the manifest file (outside the volume).
	Manifest string
	// Stats is the file the counters are saved to (every second and at
	// the end).
	Stats string
	// Session tags this run's files (w<session>/...).
	Session int
	// Seed makes the content deterministic.
	Seed uint64
	// Interval is the pause between two files (0: 50ms).
	Interval time.Duration
	// MaxUsed is the fraction of the filesystem above which no new files
	// are created, only rewritten (0: 0.6).
	MaxUsed float64
	// ReadOnly writes nothing, only re-reads (tests).
	ReadOnly bool
	// ForgetMissing does not read back the manifest's files that are
	// absent when the run starts, and counts them (Forgotten): the host
	// went back to data as of an earlier time (an abort after cutover),
	// where the files written since legitimately do not exist.
	ForgetMissing bool
	// Log receives one line per error (nil: discarded).
	Log io.Writer
	// Latency receives one line per file written, "<end, RFC 3339> <ms>"
	// (its write+fsync time, failed or not), to split the stalls by the
	// lab's phase marks (nil: none).
	Latency io.Writer
}

// Run writes until ctx ends, then saves the final stats and returns them.
// Errors of the volume are counted, not returned; only a failure to keep
// the manifest or stats is.
func (w *Writer) Run(ctx context.Context) (WriterStats, error) {
	st := WriterStats{Session: w.Session, Started: time.Now().UTC()}
	logw := w.Log
	if logw == nil {
		logw = io.Discard
	}
	interval := w.Interval
	if interval <= 0 {
		interval = 50 * time.Millisecond
	}
	maxUsed := w.MaxUsed
	if maxUsed <= 0 {
		maxUsed = 0.6
	}
	m, err := openManifest(w.Manifest)
	if err != nil {
		return st, err
	}
	defer m.close()
	if err := SaveStats(w.Stats, st); err != nil {
		return st, err
	}
	known, _ := ReadManifest(w.Manifest)
	if w.ForgetMissing {
		present := known[:0]
		for _, e := range known {
			if _, err := os.Stat(filepath.Join(w.Dir, e.Path)); err == nil {
				present = append(present, e)
			} else {
				st.Forgotten++
			}
		}
		known = present
	}
	r := rand.New(rand.NewPCG(w.Seed, uint64(w.Session)))
	fail := func(format string, args ...any) {
		st.Errors++
		st.LastError = fmt.Sprintf(format, args...)
		fmt.Fprintf(logw, "writer: %s\n", st.LastError)
	}
	check := func(e Entry) {
		t0 := time.Now()
		sum, n, err := SumFile(filepath.Join(w.Dir, e.Path))
		if ms := float64(time.Since(t0).Microseconds()) / 1000; ms > st.MaxReadMs {
			st.MaxReadMs, st.MaxReadAt = ms, time.Now().UTC()
		}
		st.Readbacks++
		switch {
		case err != nil:
			fail("read back %s: %v", e.Path, err)
		case sum != e.Sum || n != e.Size:
			st.Mismatches++
			st.LastError = fmt.Sprintf("read back %s: %d bytes sha256 %s, wrote %d bytes sha256 %s", e.Path, n, sum, e.Size, e.Sum)
			fmt.Fprintf(logw, "writer: MISMATCH %s\n", st.LastError)
		}
	}
	lastSave := time.Now()
	for n := 0; ctx.Err() == nil; n++ {
		full := used(w.Dir) >= maxUsed
		if !w.ReadOnly && full {
			if e, ok := rewritable(known, r); ok {
				b := make([]byte, e.Size)
				content(b, w.Seed, e.Session, e.index)
				t0 := time.Now()
				err := RewriteInPlace(filepath.Join(w.Dir, e.Path), b)
				w.latency(&st, t0)
				if err != nil {
					fail("rewrite %s: %v", e.Path, err)
				} else {
					st.Rewrites++
					check(e.Entry)
				}
			}
		}
		if !w.ReadOnly && !full {
			size := int64(4096 + r.IntN(28*1024))
			b := make([]byte, size)
			content(b, w.Seed, w.Session, n)
			rel := fmt.Sprintf("w%d/f%05d.dat", w.Session, n)
			e := Entry{Sum: sumBytes(b), Size: size, Session: w.Session, Path: rel}
			t0 := time.Now()
			err := WriteDurable(filepath.Join(w.Dir, rel), b)
			w.latency(&st, t0)
			if err != nil {
				fail("write %s: %v", rel, err)
			} else {
				st.Files++
				st.Bytes += size
				if err := m.add(e); err != nil {
					return st, err
				}
				known = append(known, e)
				check(e)
			}
		}
		if len(known) > 0 && n%8 == 7 {
			check(known[r.IntN(len(known))])
		}
		if time.Since(lastSave) > time.Second {
			if err := SaveStats(w.Stats, st); err != nil {
				return st, err
			}
			lastSave = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
	st.Stopped = time.Now().UTC()
	return st, SaveStats(w.Stats, st)
}

// latency records a write+fsync that started at t0: the longest in st,
// every one in w.Latency.
func (w *Writer) latency(st *WriterStats, t0 time.Time) {
	ms := float64(time.Since(t0).Microseconds()) / 1000
	if ms > st.MaxWriteMs {
		st.MaxWriteMs, st.MaxWriteAt = ms, time.Now().UTC()
	}
	if w.Latency != nil {
		fmt.Fprintf(w.Latency, "%s %.3f\n", time.Now().UTC().Format(time.RFC3339Nano), ms)
	}
}

// writerFile is a manifest entry the writer made, with the index its
// content was generated from.
type writerFile struct {
	Entry
	index int
}

// rewritable picks, at random, a manifest file a writer session made
// (w<session>/f<index>.dat), whose content it can generate again.
func rewritable(known []Entry, r *rand.Rand) (writerFile, bool) {
	if len(known) == 0 {
		return writerFile{}, false
	}
	for range 8 {
		e := known[r.IntN(len(known))]
		var session, index int
		if _, err := fmt.Sscanf(e.Path, "w%d/f%d.dat", &session, &index); err == nil && session == e.Session {
			return writerFile{Entry: e, index: index}, true
		}
	}
	return writerFile{}, false
}

// RewriteInPlace writes data over the start of an existing file without
// truncating it and makes it durable: rewriting a file with the bytes it
// holds leaves it whole whenever the write is cut short.
func RewriteInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// used returns the fraction of dir's filesystem in use (1 when unknown).
func used(dir string) float64 {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil || s.Blocks == 0 {
		return 1
	}
	return 1 - float64(s.Bavail)/float64(s.Blocks)
}

// SaveStats writes stats atomically.
func SaveStats(path string, st WriterStats) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: writer stats: %w", err)
	}
	if f, err := os.Open(tmp); err == nil {
		_ = f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("lab: writer stats: %w", err)
	}
	return nil
}

// Writes counts the durable file writes: new files and rewrites.
func (st WriterStats) Writes() int64 { return st.Files + st.Rewrites }

// LoadStats reads one stats file.
func LoadStats(path string) (WriterStats, error) {
	var st WriterStats
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("lab: writer stats: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("lab: writer stats %s: %w", path, err)
	}
	return st, nil
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	// Files and Bytes count the files checked.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Sessions counts files per writer session (0: populate).
	Sessions map[int]int `json:"sessions"`
	// Bad lists missing or mismatching files, with what was found.
	Bad []string `json:"bad,omitempty"`
}

// Verify checks every manifest file of sessions 0..maxSession (all when
// maxSession < 0) under dir, reading past the page cache.
func Verify(dir, manifest string, maxSession int) (VerifyResult, error) {
	res := VerifyResult{Sessions: map[int]int{}}
	entries, err := ReadManifest(manifest)
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		if maxSession >= 0 && e.Session > maxSession {
			continue
		}
		sum, n, err := SumFile(filepath.Join(dir, e.Path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			res.Bad = append(res.Bad, e.Path+": missing")
		case err != nil:
			res.Bad = append(res.Bad, fmt.Sprintf("%s: %v", e.Path, err))
		case sum != e.Sum || n != e.Size:
			res.Bad = append(res.Bad, fmt.Sprintf("%s: %d bytes sha256 %s, want %d bytes %s", e.Path, n, sum, e.Size, e.Sum))
		default:
			res.Files++
			res.Bytes += n
			res.Sessions[e.Session]++
		}
	}
	if len(res.Bad) > 0 {
		return res, fmt.Errorf("lab: verify %s: %d of %d files bad, first: %s", dir, len(res.Bad), len(res.Bad)+res.Files, res.Bad[0])
	}
	return res, nil
}

// DropSessions rewrites a manifest without the entries of the given
// writer sessions: files the host wrote where it no longer looks (through
// the proxy, before an abort put it back on the old LUN), which a writer
// re-reading the manifest would otherwise count as errors.
func DropSessions(manifest string, sessions ...int) error {
	entries, err := ReadManifest(manifest)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, e := range entries {
		if !slices.Contains(sessions, e.Session) {
			b.WriteString(e.line())
		}
	}
	tmp := manifest + ".tmp"
	if err := WriteDurable(tmp, []byte(b.String())); err != nil {
		return fmt.Errorf("lab: manifest: %w", err)
	}
	if err := os.Rename(tmp, manifest); err != nil {
		return fmt.Errorf("lab: manifest: %w", err)
	}
	return nil
}
