package vm

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

type cpioEntry struct {
	name         string
	mode         uint32
	data         string
	rmaj, rmin   uint32
	nlink, inode uint32
}

// parseNewc is an independent reader of the newc format, strict about the
// magic and the 4-byte alignment.
func parseNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("record at %d not aligned", off)
		}
		if len(b) < off+110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d", off)
		}
		f := make([]uint32, 13)
		for i := range f {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			f[i] = uint32(v)
		}
		namesize, filesize := int(f[11]), int(f[6])
		nameStart := off + 110
		name := string(b[nameStart : nameStart+namesize-1])
		if b[nameStart+namesize-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataStart := (nameStart + namesize + 3) &^ 3
		data := string(b[dataStart : dataStart+filesize])
		off = (dataStart + filesize + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name: name, mode: f[1], data: data, rmaj: f[9], rmin: f[10], nlink: f[4], inode: f[0]})
	}
}

func TestCPIOGolden(t *testing.T) {
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.File("/a", 0o644, []byte("hi"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want := "070701" + "00000001" + "000081a4" + "00000000" + "00000000" + "00000001" + "00000000" +
		"00000002" + "00000000" + "00000000" + "00000000" + "00000000" + "00000002" + "00000000" +
		"a\x00" + "hi\x00\x00" +
		"070701" + strings.Repeat("00000000", 4) + "00000001" + strings.Repeat("00000000", 6) + "0000000b" + "00000000" +
		"TRAILER!!!\x00" + "\x00\x00\x00"
	if got := buf.String(); got != want {
		t.Fatalf("archive:\n%s\nwant:\n%s", hex.Dump(buf.Bytes()), hex.Dump([]byte(want)))
	}
}

func TestCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.Dir("bin", 0o755)
	c.File("bin/busybox", 0o755, []byte("12345"))
	c.Symlink("bin/sh", "busybox")
	c.CharDev("dev/console", 0o600, 5, 1)
	c.File("init", 0o755, []byte("#!/bin/sh\n"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := parseNewc(t, buf.Bytes())
	want := []cpioEntry{
		{"bin", cpioDir | 0o755, "", 0, 0, 2, 1},
		{"bin/busybox", cpioFile | 0o755, "12345", 0, 0, 1, 2},
		{"bin/sh", cpioSymlink | 0o777, "busybox", 0, 0, 1, 3},
		{"dev/console", cpioCharDev | 0o600, "", 5, 1, 1, 4},
		{"init", cpioFile | 0o755, "#!/bin/sh\n", 0, 0, 1, 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries:\n got %+v\nwant %+v", got, want)
	}
	// Cross-check with GNU cpio when the host has it.
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-it", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -it: %v", err)
		}
		if got := strings.Fields(string(out)); !reflect.DeepEqual(got, []string{"bin", "bin/busybox", "bin/sh", "dev/console", "init"}) {
			t.Fatalf("cpio -it lists %q", got)
		}
	}
}

func TestParseShowDepends(t *testing.T) {
	b, err := os.ReadFile("testdata/show-depends-9p.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseShowDepends(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/lib/modules/6.1.0-56-amd64/kernel/fs/netfs/netfs.ko",
		"/lib/modules/6.1.0-56-amd64/kernel/fs/fscache/fscache.ko",
		"/lib/modules/6.1.0-56-amd64/kernel/net/9p/9pnet.ko",
		"/lib/modules/6.1.0-56-amd64/kernel/fs/9p/9p.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	b, _ = os.ReadFile("testdata/show-depends-builtin.txt")
	if got, err := parseShowDepends(b); err != nil || len(got) != 1 {
		t.Fatalf("builtin lines: %q %v", got, err)
	}
	if _, err := parseShowDepends([]byte("modprobe: FATAL: Module x not found\n")); err == nil {
		t.Fatal("an error line parsed")
	}
}

// fakeRunner answers modprobe --show-depends from a map and decompresses
// by returning a fixed payload; it records every call.
type fakeRunner struct {
	deps  map[string]string
	calls []string
}

func (f *fakeRunner) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	switch name {
	case "modprobe":
		m := args[len(args)-1]
		out, ok := f.deps[m]
		if !ok {
			return nil, fmt.Errorf("modprobe: module %s not found", m)
		}
		return []byte(out), nil
	case "xz":
		return []byte("decompressed:" + filepath.Base(args[len(args)-1])), nil
	}
	return nil, errors.New("unexpected command " + name)
}

func fakeLab(t *testing.T) (*Lab, *fakeRunner, string) {
	t.Helper()
	dir := t.TempDir()
	mods := filepath.Join(dir, "mods")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"virtio.ko", "virtio_pci.ko", "9pnet.ko", "9pnet_virtio.ko", "9p.ko.xz", "overlay.ko"} {
		if err := os.WriteFile(filepath.Join(mods, n), []byte("ELF:"+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bb := filepath.Join(dir, "busybox")
	if err := os.WriteFile(bb, []byte("busybox-binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := func(n string) string { return "insmod " + filepath.Join(mods, n) + " \n" }
	r := &fakeRunner{deps: map[string]string{
		"virtio_pci":   p("virtio.ko") + p("virtio_pci.ko"),
		"9pnet_virtio": p("virtio.ko") + p("9pnet.ko") + p("9pnet_virtio.ko"),
		"9p":           p("9pnet.ko") + p("9p.ko.xz"),
		"overlay":      "builtin foo\n" + p("overlay.ko"),
	}}
	lab := &Lab{Dir: filepath.Join(dir, "lab"), KVer: "6.1.0-99-amd64", Busybox: bb, Runner: r}
	return lab, r, mods
}

func TestInitramfsBuildAndCache(t *testing.T) {
	lab, r, mods := fakeLab(t)
	ctx := context.Background()
	path, err := lab.Initramfs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(lab.Dir, lab.KVer, "initramfs.cpio"); path != want {
		t.Fatalf("path %s, want %s", path, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]cpioEntry{}
	for _, e := range parseNewc(t, b) {
		files[e.name] = e
	}
	if files["init"].data != string(initramfsInit) || files["init"].mode != cpioFile|0o755 {
		t.Fatalf("init: %+v", files["init"])
	}
	if e := files["dev/console"]; e.mode != cpioCharDev|0o600 || e.rmaj != 5 || e.rmin != 1 {
		t.Fatalf("dev/console: %+v", e)
	}
	if files["bin/busybox"].data != "busybox-binary" || files["bin/sh"].data != "busybox" {
		t.Fatalf("busybox: %+v %+v", files["bin/busybox"], files["bin/sh"])
	}
	wantOrder := "00-virtio.ko\n01-virtio_pci.ko\n02-9pnet.ko\n03-9pnet_virtio.ko\n04-9p.ko\n05-overlay.ko\n"
	if got := files["modules/order"].data; got != wantOrder {
		t.Fatalf("modules/order:\n%s\nwant:\n%s", got, wantOrder)
	}
	if got := files["modules/04-9p.ko"].data; got != "decompressed:9p.ko.xz" {
		t.Fatalf("compressed module: %q", got)
	}
	if got := files["modules/02-9pnet.ko"].data; got != "ELF:9pnet.ko" {
		t.Fatalf("plain module: %q", got)
	}

	// Same inputs: no rebuild (the file is not rewritten).
	st1, _ := os.Stat(path)
	r.calls = nil
	if _, err := lab.Initramfs(ctx); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if !st1.ModTime().Equal(st2.ModTime()) || !os.SameFile(st1, st2) {
		t.Fatal("initramfs rebuilt with unchanged inputs")
	}
	for _, c := range r.calls {
		if strings.HasPrefix(c, "xz") {
			t.Fatalf("decompressed on a cache hit: %v", r.calls)
		}
	}

	// A changed module: rebuilt.
	if err := os.WriteFile(filepath.Join(mods, "overlay.ko"), []byte("ELF:overlay.ko v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Initramfs(ctx); err != nil {
		t.Fatal(err)
	}
	st3, _ := os.Stat(path)
	if os.SameFile(st2, st3) {
		t.Fatal("initramfs not rebuilt after a module changed")
	}
	b, _ = os.ReadFile(path)
	if !bytes.Contains(b, []byte("ELF:overlay.ko v2")) {
		t.Fatal("rebuilt initramfs lacks the new module")
	}
}

func TestInitramfsModprobeFails(t *testing.T) {
	lab, r, _ := fakeLab(t)
	delete(r.deps, "9p")
	_, err := lab.Initramfs(context.Background())
	if err == nil || !strings.Contains(err.Error(), "modules for 9p on 6.1.0-99-amd64") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenLabNotReady(t *testing.T) {
	_, err := OpenLab(t.TempDir())
	if !errors.Is(err, ErrLabNotReady) {
		t.Fatalf("empty lab dir: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kver"), []byte("0.0.0-nonexistent-amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenLab(dir)
	if !errors.Is(err, ErrLabNotReady) || !strings.Contains(err.Error(), "0.0.0-nonexistent-amd64") {
		t.Fatalf("missing kernel: %v", err)
	}
}

func TestDefaultLabDir(t *testing.T) {
	t.Setenv(EnvLabDir, "/x/lab")
	if d, err := DefaultLabDir(); err != nil || d != "/x/lab" {
		t.Fatalf("override: %q %v", d, err)
	}
	t.Setenv(EnvLabDir, "")
	d, err := DefaultLabDir()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	if d != filepath.Join(root, ".cache", "lab") {
		t.Fatalf("default lab dir %s, want under %s", d, root)
	}
	if _, err := findRepoRoot(t.TempDir()); err == nil {
		t.Fatal("found a repo root in an empty temp dir")
	}
}

func TestJobScript(t *testing.T) {
	dir := t.TempDir()
	cmd := []string{"sh", "-c", `printf '<%s>\n' "$@"; printf 'FOO=%s IN_VM=%s\n' "$FOO" "$LUNFERRY_IN_VM"; pwd`,
		"argv0", "a b", "it's", "$HOME", "x\ny"}
	env := []string{"FOO=bar 'baz' $x", "BASH_FUNC_f%%=() { :; }", "LUNFERRY_IN_VM=0", "PATH=" + os.Getenv("PATH")}
	script := jobScript(dir, env, cmd)
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s\n--- script ---\n%s", err, out, script)
	}
	want := "<a b>\n<it's>\n<$HOME>\n<x\ny>\nFOO=bar 'baz' $x IN_VM=1\n" + dir + "\n"
	if string(out) != want {
		t.Fatalf("output:\n%q\nwant:\n%q", out, want)
	}
	if strings.Contains(script, "BASH_FUNC") {
		t.Fatal("an env name the shell cannot carry was kept")
	}
	if s := jobScript("/", nil, []string{"true"}); !strings.Contains(s, "'PATH="+guestPath+"'") {
		t.Fatalf("no default PATH:\n%s", s)
	}
	if out, err := exec.Command("/bin/sh", "-c", jobScript(filepath.Join(dir, "missing"), nil, []string{"true"})).CombinedOutput(); err == nil {
		t.Fatalf("cd to a missing dir succeeded: %s", out)
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 {
		t.Fatalf("cd failure: %v", err)
	}
}

func TestQemuArgs(t *testing.T) {
	lab := &Lab{Kernel: "/boot/vmlinuz-k"}
	args := qemuArgs(lab, "/lab/initrd", "/lab/runs/r1", withDefaults(Options{Disks: []string{"/d/a.img", "/d/b,c.img"}, CPUs: 2, MemoryMiB: 1024}))
	s := strings.Join(args, " ")
	for _, want := range []string{
		"-accel tcg,thread=multi", "-smp 2", "-m 1024", "-no-reboot",
		"-kernel /boot/vmlinuz-k", "-initrd /lab/initrd",
		"panic=-1", "oops=panic", "console=ttyS0",
		"path=/,mount_tag=hostroot,security_model=none,readonly=on",
		"local,path=/lab/runs/r1,mount_tag=lunferry-lab",
		"-drive file=/d/a.img,format=raw,if=none,id=d0 -device virtio-blk-pci,drive=d0,serial=lunferry-d0",
		"-drive file=/d/b,,c.img,format=raw,if=none,id=d1 -device virtio-blk-pci,drive=d1,serial=lunferry-d1",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("qemu args lack %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "kvm") {
		t.Errorf("qemu args mention kvm: %s", s)
	}
}

func TestFailureError(t *testing.T) {
	err := error(&Failure{Err: ErrPanic, Detail: "x", ConsoleTail: "line1\nKernel panic - not syncing\n"})
	if !errors.Is(err, ErrPanic) || errors.Is(err, ErrTimeout) {
		t.Fatal("errors.Is")
	}
	if s := err.Error(); !strings.Contains(s, "lab kernel panicked: x") || !strings.Contains(s, "Kernel panic - not syncing") {
		t.Fatalf("message: %s", s)
	}
}

func TestConsoleTail(t *testing.T) {
	var w bytes.Buffer
	c := newConsole(&w)
	for i := 0; i < 1000; i++ {
		c.add(fmt.Sprint("line ", i))
	}
	lines := strings.Split(strings.TrimSuffix(c.tail(), "\n"), "\n")
	if len(lines) != consoleTailLines || lines[len(lines)-1] != "line 999" || lines[0] != fmt.Sprint("line ", 1000-consoleTailLines) {
		t.Fatalf("tail: %d lines, first %q last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if strings.Count(w.String(), "\n") != 1000 {
		t.Fatal("console writer did not get every line")
	}
	if newConsole(nil).tail() != "(no console output)\n" {
		t.Fatal("empty tail")
	}
}

func TestReadyBanner(t *testing.T) {
	m := readyRE.FindStringSubmatch("lunferry-lab: ready kernel=6.1.0-56-amd64 dm-clone=v1.0.0 uptime=5.96 modules=2.16s module=/lib/modules/6.1.0-56-amd64/updates/dkms/dm-clone.ko")
	if m == nil || m[1] != "6.1.0-56-amd64" || m[2] != "v1.0.0" || seconds(m[3]) != 5960*time.Millisecond || seconds(m[4]) != 2160*time.Millisecond ||
		m[5] != "/lib/modules/6.1.0-56-amd64/updates/dkms/dm-clone.ko" {
		t.Fatalf("banner parse: %q", m)
	}
}

func TestRemoveStaleShares(t *testing.T) {
	runs := t.TempDir()
	for _, n := range []string{"run-old", "run-new", "other-old"} {
		if err := os.Mkdir(filepath.Join(runs, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, n := range []string{"run-old", "other-old"} {
		if err := os.Chtimes(filepath.Join(runs, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleShares(runs, 24*time.Hour)
	entries, _ := os.ReadDir(runs)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"other-old", "run-new"}) {
		t.Fatalf("left %q", names)
	}
}

func TestKernelErrorLines(t *testing.T) {
	for _, l := range []string{
		"[   12.3] BUG: kernel NULL pointer dereference, address: 0000000000000008",
		"[   12.3] Oops: 0000 [#1] PREEMPT SMP NOPTI",
		"[   12.3] WARNING: CPU: 1 PID: 77 at drivers/md/dm-clone-target.c:1234 foo+0x1/0x2 [dm_clone]",
		"[  130.0] INFO: task kworker/0:1:23 blocked for more than 120 seconds.",
		"[   40.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [fio:300]",
		"[   12.3] general protection fault, probably for non-canonical address 0xdead: 0000 [#1]",
	} {
		if !kernelErrorRE.MatchString(l) {
			t.Errorf("not flagged: %s", l)
		}
	}
	for _, l := range []string{
		"[    4.0] db_root: cannot open: /etc/target",
		"[    6.6] reboot: Power down",
		"[    3.1] device-mapper: ioctl: 4.47.0-ioctl (2022-07-28) initialised: dm-devel@redhat.com",
		"[   20.0] sd 2:0:0:0: [sda] Attached SCSI disk",
	} {
		if kernelErrorRE.MatchString(l) {
			t.Errorf("flagged: %s", l)
		}
	}
}

// The lab boots dm_clone as DKMS installed it: a module found elsewhere
// (built by hand, or shipped by the kernel) or none is a lab not ready.
func TestDKMSModule(t *testing.T) {
	const dkms = "/lib/modules/6.1.0-99-amd64/updates/dkms/dm-clone.ko"
	deps := "insmod /lib/modules/6.1.0-99-amd64/kernel/drivers/md/dm-mod.ko\n" +
		"insmod /lib/modules/6.1.0-99-amd64/kernel/drivers/md/persistent-data/dm-persistent-data.ko\n"
	for _, tc := range []struct {
		name, out, want string
	}{
		{"dkms", deps + "insmod " + dkms + "\n", dkms},
		{"in tree", deps + "insmod /lib/modules/6.1.0-99-amd64/kernel/drivers/md/dm-clone.ko\n", ""},
		{"builtin", "builtin dm_clone\n", ""},
		{"missing", "-", ""},
	} {
		r := &fakeRunner{deps: map[string]string{"dm_clone": tc.out}}
		if tc.out == "-" {
			r.deps = nil
		}
		l := &Lab{KVer: "6.1.0-99-amd64", Runner: r}
		ko, err := l.dkmsModule(context.Background())
		if tc.want != "" {
			if err != nil || ko != tc.want {
				t.Errorf("%s: %q, %v; want %s", tc.name, ko, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrLabNotReady) {
			t.Errorf("%s: %q, %v; want ErrLabNotReady", tc.name, ko, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}
