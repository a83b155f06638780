package configfstest

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Attribute modes, as configfs shows them.
const (
	rw = 0o644 // CONFIGFS_ATTR
	ro = 0o444 // CONFIGFS_ATTR_RO
	wo = 0o200 // CONFIGFS_ATTR_WO
)

// stateFile prefixes the fake's private files (hidden from ReadDir).
const stateFile = ".configfstest"

type file struct {
	name    string
	mode    os.FileMode
	content string
}

// node is the default contents of a configfs group: attribute files and
// default groups.
type node struct {
	files []file
	dirs  map[string]node
}

// build creates n's contents inside dir, marking subdirectories as default
// groups.
func (f *FS) build(dir string, n node) error {
	for _, fl := range n.files {
		c := fl.content
		if c != "" && !strings.HasSuffix(c, "\n") {
			c += "\n"
		}
		p := path.Join(dir, fl.name)
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(p, fl.mode); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(n.dirs))
	for k := range n.dirs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		p := path.Join(dir, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		f.defaults[p] = true
		if err := f.build(p, n.dirs[name]); err != nil {
			return err
		}
	}
	return nil
}

func fabricNode() node {
	return node{
		files: []file{{"lio_version", ro, "Datera Inc. iSCSI Target v4.1.0"}, {"cpus_allowed_list", rw, "0-1"}},
		dirs: map[string]node{"discovery_auth": {files: []file{
			{"enforce_discovery_auth", rw, "0"}, {"userid", rw, "NULL"}, {"password", rw, "NULL"},
			{"userid_mutual", rw, "NULL"}, {"password_mutual", rw, "NULL"}, {"authenticate_target", ro, "0"},
		}}},
	}
}

func hbaNode(plugin, index string) node {
	return node{files: []file{{"hba_info", ro, "HBA Index: " + index + " plugin: " + plugin + " version: v5.0\n"}, {"hba_mode", rw, "0"}}}
}

func targetNode() node {
	return node{dirs: map[string]node{"fabric_statistics": {}, "param": {files: []file{{"cmd_completion_affinity", rw, "-1"}}}}}
}

func lunNode() node {
	return node{
		files: []file{{"alua_tg_pt_gp", rw, ""}, {"alua_tg_pt_offline", rw, "0"}, {"alua_tg_pt_status", rw, "0"}, {"alua_tg_pt_write_md", rw, "0"}},
		dirs:  map[string]node{"statistics": {dirs: map[string]node{"scsi_port": {}, "scsi_tgt_port": {}, "scsi_transport": {}}}},
	}
}

func mappedLUNNode() node {
	return node{
		files: []file{{"write_protect", rw, ""}}, // empty until linked
		dirs:  map[string]node{"statistics": {dirs: map[string]node{"scsi_auth_intr": {}, "scsi_att_intr_port": {}}}},
	}
}

func storageObjectNode(plugin string) node {
	product := map[string]string{"iblock": "IBLOCK", "fileio": "FILEIO", "rd_mcp": "RAMDISK-MCP"}[plugin]
	attrs := []file{
		{"block_size", rw, "512"}, {"emulate_write_cache", rw, "0"}, {"emulate_ua_intlck_ctrl", rw, "0"},
		{"emulate_tas", rw, "1"}, {"emulate_tpu", rw, "0"}, {"emulate_tpws", rw, "0"}, {"emulate_caw", rw, "1"},
		{"emulate_3pc", rw, "1"}, {"emulate_pr", rw, "1"}, {"enforce_pr_isids", rw, "1"}, {"force_pr_aptpl", rw, "0"},
		{"is_nonrot", rw, "0"}, {"emulate_rest_reord", rw, "0"}, {"unmap_zeroes_data", rw, "0"},
		{"max_unmap_lba_count", rw, "0"}, {"max_unmap_block_desc_count", rw, "0"}, {"unmap_granularity", rw, "0"},
		{"unmap_granularity_alignment", rw, "0"}, {"max_write_same_len", rw, "0"}, {"queue_depth", rw, "128"},
		{"optimal_sectors", rw, "16384"}, {"pi_prot_type", rw, "0"}, {"pi_prot_format", rw, "0"}, {"pi_prot_verify", rw, "0"},
		{"emulate_model_alias", rw, "1"}, {"emulate_dpo", rw, "1"}, {"emulate_fua_write", rw, "1"}, {"emulate_fua_read", rw, "1"},
		{"hw_block_size", ro, "512"}, {"hw_max_sectors", ro, "16384"}, {"hw_queue_depth", ro, "128"},
		{"hw_pi_prot_type", ro, "0"}, {"alua_support", rw, "1"}, {"pgr_support", rw, "1"},
	}
	return node{
		files: []file{
			{"info", ro, "Status: DEACTIVATED  Max Queue Depth: 0  SectorSize: 512  HwMaxSectors: 16384"},
			{"control", wo, ""}, {"alias", rw, ""}, {"udev_path", rw, ""}, {"enable", rw, "0"},
			{"alua_lu_gp", rw, "LU Group Alias: default_lu_gp\nLU Group ID: 0"}, {"lba_map", rw, ""},
		},
		dirs: map[string]node{
			"action": {},
			"attrib": {files: attrs},
			"pr": {files: []file{
				{"res_holder", ro, "No SPC-3 Reservation holder"}, {"res_pr_all_tgt_pts", ro, "SPC-3 Reservation: All Target Ports"},
				{"res_pr_generation", ro, "0x00000000"}, {"res_pr_holder_tg_port", ro, "No SPC-3 Reservation holder"},
				{"res_pr_registered_i_pts", ro, "None"}, {"res_pr_type", ro, "No SPC-3 Reservation holder"},
				{"res_type", ro, "SPC_PASSTHROUGH"}, {"res_aptpl_active", ro, "0"}, {"res_aptpl_metadata", wo, ""},
			}},
			"wwn": {files: []file{
				{"vendor_id", rw, "LIO-ORG"}, {"product_id", rw, product}, {"revision", rw, "4.0"},
				{"company_id", rw, "0x001405"}, {"vpd_unit_serial", rw, "T10 VPD Unit Serial Number: "},
				{"vpd_protocol_identifier", ro, ""}, {"vpd_assoc_logical_unit", ro, ""},
				{"vpd_assoc_target_port", ro, ""}, {"vpd_assoc_scsi_target_device", ro, ""},
			}},
			"alua": {dirs: map[string]node{"default_tg_pt_gp": {files: []file{
				{"alua_access_state", rw, "0"}, {"alua_access_status", rw, "None"}, {"alua_access_type", rw, "Implicit and Explicit"},
				{"alua_support_active_nonoptimized", rw, "1"}, {"alua_support_active_optimized", rw, "1"},
				{"alua_support_lba_dependent", ro, "0"}, {"alua_support_offline", rw, "1"}, {"alua_support_standby", rw, "1"},
				{"alua_support_transitioning", rw, "1"}, {"alua_support_unavailable", rw, "1"}, {"alua_write_metadata", rw, "0"},
				{"implicit_trans_secs", rw, "0"}, {"nonop_delay_msecs", rw, "100"}, {"preferred", rw, "0"},
				{"tg_pt_gp_id", rw, "0"}, {"trans_delay_msecs", rw, "0"}, {"members", ro, ""},
			}}}},
			"statistics": {dirs: map[string]node{"scsi_dev": {}, "scsi_lu": {}, "scsi_tgt_dev": {}}},
		},
	}
}

func tpgNode() node {
	return node{
		files: []file{{"enable", rw, "0"}, {"dynamic_sessions", ro, ""}},
		dirs: map[string]node{
			"lun":  {},
			"np":   {},
			"acls": {},
			"attrib": {files: []file{
				{"authentication", rw, "1"}, {"login_timeout", rw, "15"}, {"netif_timeout", rw, "2"},
				{"generate_node_acls", rw, "0"}, {"default_cmdsn_depth", rw, "64"}, {"cache_dynamic_acls", rw, "0"},
				{"demo_mode_write_protect", rw, "1"}, {"prod_mode_write_protect", rw, "0"}, {"demo_mode_discovery", rw, "1"},
				{"default_erl", rw, "0"}, {"t10_pi", rw, "0"}, {"fabric_prot_type", rw, "0"},
				{"tpg_enabled_sendtargets", rw, "1"}, {"login_keys_workaround", rw, "1"},
			}},
			"auth": {files: []file{
				{"userid", rw, ""}, {"password", rw, ""}, {"authenticate_target", ro, "0"},
				{"userid_mutual", rw, ""}, {"password_mutual", rw, ""},
			}},
			"param": {files: []file{
				{"AuthMethod", rw, "CHAP,None"}, {"HeaderDigest", rw, "CRC32C,None"}, {"DataDigest", rw, "CRC32C,None"},
				{"MaxConnections", rw, "1"}, {"TargetAlias", rw, "LIO Target"}, {"InitialR2T", rw, "Yes"},
				{"ImmediateData", rw, "Yes"}, {"MaxRecvDataSegmentLength", rw, "8192"},
				{"MaxXmitDataSegmentLength", rw, "262144"}, {"MaxBurstLength", rw, "262144"},
				{"FirstBurstLength", rw, "65536"}, {"DefaultTime2Wait", rw, "2"}, {"DefaultTime2Retain", rw, "20"},
				{"MaxOutstandingR2T", rw, "1"}, {"DataPDUInOrder", rw, "Yes"}, {"DataSequenceInOrder", rw, "Yes"},
				{"ErrorRecoveryLevel", rw, "0"}, {"IFMarker", rw, "No"}, {"OFMarker", rw, "No"},
				{"IFMarkInt", rw, "Reject"}, {"OFMarkInt", rw, "Reject"},
			}},
		},
	}
}

func aclNode(initiator string) node {
	return node{
		files: []file{{"info", ro, noSession(initiator)}, {"cmdsn_depth", rw, "64"}, {"tag", rw, ""}},
		dirs: map[string]node{
			"attrib": {files: []file{
				{"dataout_timeout", rw, "3"}, {"dataout_timeout_retries", rw, "5"}, {"default_erl", rw, "0"},
				{"nopin_timeout", rw, "15"}, {"nopin_response_timeout", rw, "30"}, {"random_datain_pdu_offsets", rw, "0"},
				{"random_datain_seq_offsets", rw, "0"}, {"random_r2t_offsets", rw, "0"}, {"authentication", rw, "-1"},
			}},
			"auth": {files: []file{
				{"userid", rw, ""}, {"password", rw, ""}, {"authenticate_target", ro, "0"},
				{"userid_mutual", rw, ""}, {"password_mutual", rw, ""},
			}},
			"param": {files: []file{
				{"MaxConnections", ro, "No Active iSCSI Session"}, {"InitialR2T", ro, "No Active iSCSI Session"},
				{"ImmediateData", ro, "No Active iSCSI Session"}, {"ErrorRecoveryLevel", ro, "No Active iSCSI Session"},
			}},
			"fabric_statistics": {},
		},
	}
}

// put replaces a file's content whatever its mode (the fake's own writes).
func put(p, content string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	mode := fi.Mode().Perm()
	if err := os.Chmod(p, 0o600); err != nil {
		return err
	}
	werr := os.WriteFile(p, []byte(content), 0o600)
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return werr
}

// readAny reads a file whatever its mode (the fake's own reads).
func readAny(p string) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	mode := fi.Mode().Perm()
	if mode&0o400 == 0 {
		if err := os.Chmod(p, mode|0o400); err != nil {
			return nil, err
		}
		defer os.Chmod(p, mode)
	}
	return os.ReadFile(p)
}

func readTrim(p string) string {
	b, _ := readAny(p)
	return strings.TrimSpace(string(b))
}

// controlState returns the control parameters written to a storage object.
func controlState(so string) map[string]string {
	out := map[string]string{}
	b, _ := os.ReadFile(path.Join(so, stateFile))
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

func saveControlState(so string, m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, m[k])
	}
	return os.WriteFile(path.Join(so, stateFile), []byte(b.String()), 0o600)
}

func parseBool01(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "1", "y", "Y", "on":
		return true, nil
	case "0", "n", "N", "off":
		return false, nil
	}
	return false, unix.EINVAL
}

// store applies a write of data to attribute p with the kernel's checks.
func (f *FS) store(p, data string) error {
	dir, name := path.Dir(p), path.Base(p)
	val := strings.TrimRight(data, "\n")
	switch {
	case f.kind(dir) == kindStorageObject:
		return f.storeStorageObject(dir, name, val)
	case f.kind(path.Dir(dir)) == kindStorageObject && path.Base(dir) == "wwn":
		return f.storeWWN(path.Dir(dir), name, val)
	case f.kind(path.Dir(dir)) == kindStorageObject && path.Base(dir) == "pr" && name == "res_aptpl_metadata":
		return f.storeAPTPL(path.Dir(dir), p, val)
	case f.kind(path.Dir(dir)) == kindStorageObject && path.Base(dir) == "attrib":
		if name == "block_size" && f.linkedInto(path.Dir(dir)) {
			return unix.EINVAL
		}
		if _, err := strconv.ParseUint(val, 0, 32); err != nil {
			return unix.EINVAL
		}
	case f.kind(dir) == kindTPG && name == "enable":
		on, err := parseBool01(val)
		if err != nil {
			return err
		}
		if !on {
			// Disabling a TPG closes its sessions.
			acls, _ := os.ReadDir(path.Join(dir, "acls"))
			for _, a := range acls {
				if err := put(path.Join(dir, "acls", a.Name(), "info"), noSession(a.Name())); err != nil {
					return err
				}
			}
		}
		val = map[bool]string{true: "1", false: "0"}[on]
	case f.kind(path.Dir(dir)) == kindTPG && path.Base(dir) == "attrib":
		n, err := strconv.ParseUint(val, 0, 32)
		if err != nil {
			return unix.EINVAL
		}
		switch name {
		case "authentication", "generate_node_acls", "cache_dynamic_acls", "demo_mode_write_protect", "prod_mode_write_protect":
			if n > 1 {
				return unix.EINVAL
			}
		}
	case (f.kind(path.Dir(dir)) == kindACL || f.kind(path.Dir(dir)) == kindTPG) && path.Base(dir) == "auth":
		if len(data) >= 256 {
			return unix.EINVAL
		}
	case f.kind(path.Dir(dir)) == kindACL && path.Base(dir) == "attrib" && name == "authentication":
		if val != "0" && val != "1" && val != "-1" {
			return unix.EINVAL
		}
	case f.kind(dir) == kindMappedLUN && name == "write_protect":
		if val != "0" && val != "1" {
			return unix.EINVAL
		}
		if links, _ := f.linksIn(dir); len(links) == 0 {
			return nil // no mapping yet: the kernel drops the value
		}
	}
	return put(p, val+"\n")
}

func (f *FS) storeStorageObject(so, name, val string) error {
	plugin := hbaRE.FindStringSubmatch(path.Base(path.Dir(so)))[1]
	enabled := readTrim(path.Join(so, "enable")) == "1"
	switch name {
	case "control":
		if enabled {
			return unix.EEXIST // e.g. iblock: "Unable to set udev_path= while ib_dev->ibd_bd exists"
		}
		st := controlState(so)
		for _, kv := range strings.Split(val, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				continue // the kernel's match_token ignores what it does not know
			}
			st[k] = v
		}
		return saveControlState(so, st)
	case "enable":
		if !strings.Contains(val, "1") {
			return unix.EINVAL
		}
		if enabled {
			return unix.EEXIST
		}
		st := controlState(so)
		var info string
		switch plugin {
		case "iblock":
			if st["udev_path"] == "" {
				return unix.EINVAL
			}
			info = fmt.Sprintf("Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 128\n        iBlock device: fake0  UDEV PATH: %s  readonly: %s\n        Major: 254 Minor: 0  CLAIMED: IBLOCK\n",
				st["udev_path"], orDefault(st["readonly"], "0"))
		case "fileio":
			if st["fd_dev_name"] == "" || st["fd_dev_size"] == "" && !strings.HasPrefix(st["fd_dev_name"], "/dev/") {
				return unix.EINVAL
			}
			info = fmt.Sprintf("Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 16384\n        TCM FILEIO ID: 0        File: %s  Size: %s  Mode: O_DSYNC Async: %s\n",
				st["fd_dev_name"], orDefault(st["fd_dev_size"], "0"), orDefault(st["fd_async_io"], "0"))
		case "rd_mcp":
			if st["rd_pages"] == "" {
				return unix.EINVAL
			}
			info = fmt.Sprintf("Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 1024\n        TCM RamDisk ID: 0  RamDisk Makeup: rd_mcp\n        PAGES/PAGE_SIZE: %s*4096  SG_table_count: 1  nullio: %s\n",
				st["rd_pages"], orDefault(st["rd_nullio"], "0"))
		default:
			return unix.EINVAL
		}
		if err := put(path.Join(so, "info"), info); err != nil {
			return err
		}
		return put(path.Join(so, "enable"), "1\n")
	}
	return put(path.Join(so, name), val+"\n")
}

func (f *FS) storeWWN(so, name, val string) error {
	if f.linkedInto(so) {
		return unix.EINVAL // "Unable to set ... while active exports exist"
	}
	limits := map[string]int{"vendor_id": 8, "product_id": 16, "revision": 4, "vpd_unit_serial": 253}
	if n, ok := limits[name]; ok && len(val) > n {
		return unix.EOVERFLOW
	}
	switch name {
	case "vpd_unit_serial":
		val = "T10 VPD Unit Serial Number: " + val
	case "company_id":
		n, err := strconv.ParseUint(val, 0, 32)
		if err != nil {
			return unix.EINVAL
		}
		if n > 0xFFFFFF {
			return unix.EOVERFLOW
		}
		val = fmt.Sprintf("0x%06x", n) // the kernel's "%#08x"
	}
	return put(path.Join(so, "wwn", name), val+"\n")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// storeAPTPL keeps every registration written to pr/res_aptpl_metadata,
// one line each, as the kernel keeps a list of them; it refuses them
// while a LUN exports the storage object so.
func (f *FS) storeAPTPL(so, p, val string) error {
	if f.linkedInto(so) {
		return unix.EINVAL // "Unable to process APTPL metadata while active fabric exports exist"
	}
	if !strings.Contains(val, "initiator_node=") || !strings.Contains(val, "target_node=") || !strings.Contains(val, "sa_res_key=") {
		return unix.EINVAL // "Illegal parameters for APTPL registration"
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if err := os.Chmod(p, 0o600); err != nil { // write-only to the tree's users
		return err
	}
	b, err := os.ReadFile(p)
	if err == nil {
		err = os.WriteFile(p, append(b, val+"\n"...), 0o600)
	}
	if cerr := os.Chmod(p, fi.Mode().Perm()); err == nil {
		err = cerr
	}
	return err
}
