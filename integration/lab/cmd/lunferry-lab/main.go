// Command lunferry-lab plays, inside the lab VM, everything around the
// lunferry proxy: the old and new SAN arrays, the application host and its
// writer, and the final checks. The cutover and handover hooks under
// integration/lab/hooks and scripts/demo.sh drive it; the e2e tests use the
// same package (integration/lab) directly.
//
// Usage: lunferry-lab [-config FILE] COMMAND [ARGS]
//
//	init [-dir D] [-old-backing P] [-old-size N] [-new-backing P] [-new-size N]
//	                          write the lab config (default topology)
//	arrays up|down [ROLE...]  build or remove the arrays (all by default)
//	acl ROLE WHO...           admit exactly WHO (IQNs, "host", "proxy") to ROLE
//	host login ROLE           log the host in to ROLE ("old", "new", "proxy"); print the disk
//	host mkfs ROLE            log in and make an ext4 filesystem
//	host mount ROLE           log in and mount at the host's mount point
//	host unmount              unmount and log the host out of everything
//	populate [-files N] [-big BYTES]   write the initial files (manifest session 0)
//	writer start|stop|stats   the background writer (stop prints its stats as JSON)
//	writer run -session N     the writer itself (used by start)
//	verify [-dev DEV] [-max-session N]
//	                          check every manifest file (on DEV: e2fsck -fn, then a read-only mount)
//	backing-sum ROLE [-o FILE] SHA-256 of an array's backing store
//	sum PATH                  SHA-256 of a file or device, read past the page cache
//	acl-add|acl-del ROLE WHO... admit WHO to ROLE too / take WHO's ACL away
//	identity ROLE [-write-back] give ROLE a unit serial (a WWID) and a write cache
//	mpath start|stop|show     the host's dm-multipath (udevd, multipathd) in the lab VM
//	                          (stop unmounts the host's filesystem first)
//	mpath add ROLE            log the host in to ROLE, wait for the disk to serve in a map
//	mpath check ROLE          exit 0 when the disk behind ROLE serves in the host's map
//	mpath remove ROLE         multipathd del path of ROLE's disk, log the host out of ROLE
//	mpath mkfs|mount ROLE     add ROLE's path, then make ext4 on / mount the host's map
//	mark PHASE                record that PHASE starts now (per-phase write stalls)
//	stalls                    the writer's longest write per marked phase
//
// The config path comes from -config or $LUNFERRY_LAB_CONFIG.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "lunferry-lab: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("lunferry-lab", flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv(lab.EnvConfig), "lab config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return errors.New("no command (see the package documentation)")
	}
	if *cfgPath == "" {
		return fmt.Errorf("no config: give -config or set %s", lab.EnvConfig)
	}
	if args[0] == "init" {
		return initConfig(*cfgPath, args[1:])
	}
	cfg, err := lab.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if online[args[0]] {
		return onlineCommand(cfg, *cfgPath, args)
	}
	switch args[0] {
	case "arrays":
		return arrays(cfg, args[1:])
	case "acl":
		if len(args) < 3 {
			return errors.New("acl ROLE WHO...")
		}
		a, err := cfg.Array(args[1])
		if err != nil {
			return err
		}
		var iqns []string
		for _, w := range args[2:] {
			iqns = append(iqns, cfg.ResolveIQN(w))
		}
		if err := a.SetACLs(iqns...); err != nil {
			return err
		}
		// The config is the arrays' state: a lab that re-creates them
		// after a reboot must find the remapped ACLs.
		return cfg.Save(*cfgPath)
	case "host":
		return host(cfg, args[1:])
	case "populate":
		f := flag.NewFlagSet("populate", flag.ContinueOnError)
		files := f.Int("files", 64, "number of small files")
		big := f.Int64("big", 4<<20, "size of the large file")
		if err := f.Parse(args[1:]); err != nil {
			return err
		}
		n, b, err := lab.Populate(cfg.Host.Mount, cfg.Manifest(), *files, *big, cfg.Seed)
		if err != nil {
			return err
		}
		fmt.Printf("populated %d files, %d bytes\n", n, b)
		return nil
	case "writer":
		return writer(cfg, *cfgPath, args[1:])
	case "verify":
		return verify(cfg, args[1:])
	case "backing-sum":
		f := flag.NewFlagSet("backing-sum", flag.ContinueOnError)
		out := f.String("o", "", "also write the line to this file (relative to the lab dir)")
		if len(args) < 2 {
			return errors.New("backing-sum ROLE [-o FILE]")
		}
		if err := f.Parse(args[2:]); err != nil {
			return err
		}
		a, err := cfg.Array(args[1])
		if err != nil {
			return err
		}
		s, n, err := lab.SumFile(a.Backing)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s  %d  %s\n", s, n, a.Backing)
		fmt.Print(line)
		if *out != "" {
			p := *out
			if !filepath.IsAbs(p) {
				p = filepath.Join(cfg.Dir, p)
			}
			// A multi-boot test compares it after a power cut.
			return lab.WriteDurable(p, []byte(line))
		}
		return nil
	case "sum":
		if len(args) != 2 {
			return errors.New("sum PATH")
		}
		s, n, err := lab.SumFile(args[1])
		if err != nil {
			return err
		}
		fmt.Printf("%s  %d  %s\n", s, n, args[1])
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func initConfig(path string, args []string) error {
	f := flag.NewFlagSet("init", flag.ContinueOnError)
	dir := f.String("dir", filepath.Dir(path), "lab directory (manifest, writer stats)")
	oldB := f.String("old-backing", "", "old array's backing store (file or block device)")
	oldS := f.Int64("old-size", 64<<20, "old LUN size for a file backing store")
	newB := f.String("new-backing", "", "new array's backing store")
	newS := f.Int64("new-size", 96<<20, "new LUN size for a file backing store")
	if err := f.Parse(args); err != nil {
		return err
	}
	if *oldB == "" || *newB == "" {
		return errors.New("init: -old-backing and -new-backing are required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	return lab.DefaultConfig(*dir, *oldB, *oldS, *newB, *newS).Save(path)
}

func roles(cfg *lab.Config, args []string) []string {
	if len(args) > 0 {
		return args
	}
	return []string{"old", "new"}
}

func arrays(cfg *lab.Config, args []string) error {
	if len(args) == 0 {
		return errors.New("arrays up|down [ROLE...]")
	}
	for _, r := range roles(cfg, args[1:]) {
		a, err := cfg.Array(r)
		if err != nil {
			return err
		}
		switch args[0] {
		case "up":
			err = a.Up()
		case "down":
			err = a.Down()
		default:
			return fmt.Errorf("arrays %s: want up or down", args[0])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func host(cfg *lab.Config, args []string) error {
	if len(args) == 0 {
		return errors.New("host login|mkfs|mount|unmount")
	}
	if args[0] == "unmount" {
		return cfg.HostLogoutAll()
	}
	if len(args) != 2 {
		return fmt.Errorf("host %s ROLE", args[0])
	}
	portal, iqn, err := cfg.Target(args[1])
	if err != nil {
		return err
	}
	dev, err := cfg.Host.Login(portal, iqn, 30*time.Second)
	if err != nil {
		return err
	}
	switch args[0] {
	case "login":
	case "mkfs":
		err = lab.Mkfs(dev)
	case "mount":
		err = cfg.Host.MountDisk(dev)
	default:
		return fmt.Errorf("unknown host command %q", args[0])
	}
	if err == nil {
		fmt.Println(dev)
	}
	return err
}

func writer(cfg *lab.Config, cfgPath string, args []string) error {
	if len(args) == 0 {
		return errors.New("writer start|stop|stats|run")
	}
	switch args[0] {
	case "start":
		self, err := os.Executable()
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(cfgPath)
		var runArgs []string
		if len(args) > 1 && args[1] == "-forget-missing" {
			runArgs = append(runArgs, "-forget-missing")
		}
		n, err := cfg.StartWriter(self, abs, runArgs...)
		if err == nil {
			fmt.Printf("writer session %d started\n", n)
		}
		return err
	case "stop":
		st, ran, err := cfg.StopWriter()
		if err != nil {
			return err
		}
		if !ran {
			fmt.Println("{}")
			return nil
		}
		return printJSON(st)
	case "stats":
		st, err := cfg.AllStats()
		if err != nil {
			return err
		}
		return printJSON(st)
	case "run":
		f := flag.NewFlagSet("writer run", flag.ContinueOnError)
		session := f.Int("session", 1, "session number")
		forget := f.Bool("forget-missing", false, "do not read back manifest files absent at start (the host went back to older data)")
		if err := f.Parse(args[1:]); err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		lat, err := os.OpenFile(cfg.LatencyFile(*session), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer lat.Close()
		w := &lab.Writer{Dir: cfg.Host.Mount, Manifest: cfg.Manifest(), Stats: cfg.StatsFile(*session),
			Session: *session, Seed: cfg.Seed, Log: os.Stderr, ForgetMissing: *forget, Latency: lat}
		st, err := w.Run(ctx)
		fmt.Fprintf(os.Stderr, "writer session %d: %d files, %d bytes, %d read-backs, %d errors, %d mismatches\n",
			st.Session, st.Files, st.Bytes, st.Readbacks, st.Errors, st.Mismatches)
		return err
	}
	return fmt.Errorf("unknown writer command %q", args[0])
}

func verify(cfg *lab.Config, args []string) error {
	f := flag.NewFlagSet("verify", flag.ContinueOnError)
	dev := f.String("dev", "", "check this device (fsck, read-only mount) instead of the mounted filesystem")
	maxSession := f.Int("max-session", -1, "check only files of writer sessions up to N (0: the initial files)")
	if err := f.Parse(args); err != nil {
		return err
	}
	dir := cfg.Host.Mount
	if *dev != "" {
		out, err := lab.Fsck(*dev)
		if err != nil {
			return err
		}
		fmt.Print(out)
		dir = filepath.Join(cfg.Dir, "verify-mnt")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if out, err := lab.ExecOut("mount", "-t", "ext4", "-o", "ro", *dev, dir); err != nil {
			return fmt.Errorf("mount %s read-only: %v: %s", *dev, err, out)
		}
		defer lab.ExecOut("umount", dir) //nolint:errcheck
	}
	res, err := lab.Verify(dir, cfg.Manifest(), *maxSession)
	fmt.Printf("verified %d files, %d bytes (per session: %v)\n", res.Files, res.Bytes, res.Sessions)
	return err
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

// aclEdit admits WHO to an array too (acl-add) or takes WHO's ACL away
// (acl-del), keeping the other initiators', and saves the config.
func aclEdit(cfg *lab.Config, cfgPath string, args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("%s ROLE WHO...", args[0])
	}
	a, err := cfg.Array(args[1])
	if err != nil {
		return err
	}
	have, err := a.ACLList()
	if err != nil {
		return err
	}
	for _, w := range args[2:] {
		iqn := cfg.ResolveIQN(w)
		have = slices.DeleteFunc(have, func(s string) bool { return s == iqn })
		if args[0] == "acl-add" {
			have = append(have, iqn)
		}
	}
	if err := a.SetACLs(have...); err != nil {
		return err
	}
	return cfg.Save(cfgPath)
}

func mpath(cfg *lab.Config, args []string) error {
	mp := cfg.Multipath()
	if len(args) == 1 {
		switch args[0] {
		case "start":
			return mp.Start()
		case "stop":
			// A mounted map cannot be flushed.
			if err := cfg.Host.Unmount(); err != nil {
				return err
			}
			return mp.Stop()
		case "show":
			fmt.Print(mp.Show())
			return nil
		}
	}
	if len(args) != 2 {
		return errors.New("mpath start|stop|show, or mpath add|check|remove|mkfs|mount ROLE")
	}
	role := args[1]
	switch args[0] {
	case "check":
		m, err := cfg.HostCheckPaths(role)
		if err == nil {
			fmt.Printf("%s %s %v\n", m.Name, m.Dev, m.Paths)
		}
		return err
	case "remove":
		return cfg.HostRemovePaths(role)
	case "add", "mkfs", "mount":
	default:
		return fmt.Errorf("unknown mpath command %q", args[0])
	}
	m, disk, err := cfg.HostAddPaths(role, 60*time.Second)
	if err != nil {
		return err
	}
	switch args[0] {
	case "mkfs":
		err = lab.Mkfs(m.Dev)
	case "mount":
		_, err = cfg.HostMountMap()
	}
	if err == nil {
		fmt.Printf("%s %s %s\n", m.Name, m.Dev, disk)
	}
	return err
}

// online are the commands of the online cutover's lab (multipath host,
// phase marks, array identity and ACL edits).
var online = map[string]bool{"acl-add": true, "acl-del": true, "mpath": true, "identity": true, "mark": true, "stalls": true}

func onlineCommand(cfg *lab.Config, cfgPath string, args []string) error {
	switch args[0] {
	case "acl-add", "acl-del":
		return aclEdit(cfg, cfgPath, args)
	case "mpath":
		return mpath(cfg, args[1:])
	case "identity":
		f := flag.NewFlagSet("identity", flag.ContinueOnError)
		wb := f.Bool("write-back", false, "report a volatile write cache and take FUA (fileio)")
		if len(args) < 2 {
			return errors.New("identity ROLE [-write-back]")
		}
		if err := f.Parse(args[2:]); err != nil {
			return err
		}
		a, err := cfg.Array(args[1])
		if err != nil {
			return err
		}
		// Shaped as the UUIDs targetcli gives storage objects.
		a1, a2 := rand.Uint64(), rand.Uint64()
		serial := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a1>>32, a1>>16&0xffff, a1&0xffff, a2>>48, a2&(1<<48-1))
		return a.SetIdentity(lab.LUNIdentity{UnitSerial: serial, WriteCache: *wb})
	case "mark":
		if len(args) != 2 {
			return errors.New("mark PHASE")
		}
		return cfg.Mark(args[1])
	case "stalls":
		st, err := cfg.PhaseStalls()
		if err == nil {
			fmt.Print(lab.FormatStalls(st))
		}
		return err
	}
	return fmt.Errorf("unknown command %q", args[0])
}
