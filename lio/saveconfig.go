package lio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SaveConfig is targetcli-fb's saveconfig.json (the format rtslib-fb's
// RTSRoot.dump writes and RTSRoot.restore reads), limited by Dump to the
// objects lunferry owns. Field names and JSON keys follow rtslib-fb; keys
// rtslib would reject for a plugin (for example "size" on a block storage
// object, which rtslib passes to the constructor and fails on) are left out.
type SaveConfig struct {
	// FabricModules holds fabric-wide settings (discovery auth); lunferry
	// never writes any and Dump returns an empty list.
	FabricModules []json.RawMessage `json:"fabric_modules"`
	// StorageObjects are the backstores.
	StorageObjects []StorageObjectConfig `json:"storage_objects"`
	// Targets are the fabric targets (iSCSI only for lunferry).
	Targets []TargetConfig `json:"targets"`
}

// StorageObjectConfig is one backstore as rtslib dumps it.
type StorageObjectConfig struct {
	// Name is the storage object name (the configfs directory name).
	Name string `json:"name"`
	// Plugin is rtslib's backstore name: "block", "fileio" or "ramdisk".
	Plugin string `json:"plugin"`
	// Dev is the block device (block) or file/device (fileio) path.
	Dev string `json:"dev,omitempty"`
	// Size in bytes: fileio (of the file) and ramdisk only.
	Size *uint64 `json:"size,omitempty"`
	// WWN is the T10 VPD unit serial.
	WWN string `json:"wwn,omitempty"`
	// ReadOnly is the iblock readonly flag (block only).
	ReadOnly *bool `json:"readonly,omitempty"`
	// WriteBack reports attrib/emulate_write_cache (block and fileio).
	WriteBack *bool `json:"write_back,omitempty"`
	// AIO is fileio's fd_async_io (fileio only).
	AIO *bool `json:"aio,omitempty"`
	// NullIO is ramdisk's rd_nullio (ramdisk only, dumped when set).
	NullIO bool `json:"nullio,omitempty"`
	// Attributes are the writable attrib/ files.
	Attributes Attributes `json:"attributes,omitempty"`
	// ALUATPGs are ALUA target port groups; lunferry uses only the
	// kernel's default group and dumps an empty list.
	ALUATPGs []json.RawMessage `json:"alua_tpgs"`
}

// Path returns the storage object's path in targetcli's namespace,
// "/backstores/<plugin>/<name>", as LUNConfig.StorageObject refers to it.
func (s StorageObjectConfig) Path() string { return "/backstores/" + s.Plugin + "/" + s.Name }

// TargetConfig is one target as rtslib dumps it.
type TargetConfig struct {
	// Fabric is the fabric module name; lunferry writes "iscsi".
	Fabric string `json:"fabric"`
	// WWN is the target IQN.
	WWN string `json:"wwn"`
	// TPGs are the target portal groups.
	TPGs []TPGConfig `json:"tpgs"`
}

// TPGConfig is one target portal group.
type TPGConfig struct {
	// Tag is the TPG tag (tpgt_<Tag>).
	Tag uint16 `json:"tag"`
	// Enable is the TPG's enable flag.
	Enable bool `json:"enable"`
	// Attributes are the writable attrib/ files (authentication,
	// generate_node_acls, demo_mode_write_protect, ...).
	Attributes Attributes `json:"attributes,omitempty"`
	// Parameters are the writable param/ files (iSCSI login keys such as
	// TargetAlias), as strings.
	Parameters map[string]string `json:"parameters,omitempty"`
	// LUNs are the TPG LUNs.
	LUNs []LUNConfig `json:"luns"`
	// Portals are the network portals.
	Portals []PortalConfig `json:"portals"`
	// NodeACLs are the initiator ACLs.
	NodeACLs []NodeACLConfig `json:"node_acls"`
}

// LUNConfig is one TPG LUN.
type LUNConfig struct {
	// Index is the LUN number (lun_<Index>).
	Index uint64 `json:"index"`
	// StorageObject is "/backstores/<plugin>/<name>".
	StorageObject string `json:"storage_object"`
	// Alias is the name of the symlink inside the LUN directory.
	Alias string `json:"alias"`
	// ALUATGPtGpName is the ALUA target port group ("default_tg_pt_gp").
	ALUATGPtGpName string `json:"alua_tg_pt_gp_name,omitempty"`
}

// PortalConfig is one network portal. IPAddress is written the way the
// configfs directory names it: IPv6 addresses in brackets.
type PortalConfig struct {
	// IPAddress is the address, "[v6addr]" for IPv6.
	IPAddress string `json:"ip_address"`
	// Port is the TCP port.
	Port uint16 `json:"port"`
	// ISER is the iser flag (always false for lunferry).
	ISER bool `json:"iser"`
	// Offload is the cxgbit offload flag (always false for lunferry).
	Offload bool `json:"offload"`
}

// NodeACLConfig is one initiator ACL. The chap_* keys hold secrets: files
// containing a SaveConfig must be protected like any secret (Dump's caller
// writes them 0600, as targetcli does).
type NodeACLConfig struct {
	// NodeWWN is the initiator IQN.
	NodeWWN string `json:"node_wwn"`
	// Attributes are the writable attrib/ files.
	Attributes Attributes `json:"attributes,omitempty"`
	// MappedLUNs are the LUNs this initiator sees.
	MappedLUNs []MappedLUNConfig `json:"mapped_luns"`
	// Tag is the ACL group tag (unused by lunferry).
	Tag string `json:"tag,omitempty"`
	// ChapUserID is auth/userid (one-way CHAP).
	ChapUserID string `json:"chap_userid,omitempty"`
	// ChapPassword is auth/password.
	ChapPassword string `json:"chap_password,omitempty"`
	// ChapMutualUserID is auth/userid_mutual (mutual CHAP).
	ChapMutualUserID string `json:"chap_mutual_userid,omitempty"`
	// ChapMutualPassword is auth/password_mutual.
	ChapMutualPassword string `json:"chap_mutual_password,omitempty"`
}

// MappedLUNConfig is one LUN mapping inside a node ACL.
type MappedLUNConfig struct {
	// Index is the LUN number the initiator sees.
	Index uint64 `json:"index"`
	// TPGLUN is the TPG LUN it maps.
	TPGLUN uint64 `json:"tpg_lun"`
	// WriteProtect makes the LUN read-only for this initiator.
	WriteProtect bool `json:"write_protect"`
	// Alias is the name of the symlink inside the mapped LUN directory.
	Alias string `json:"alias"`
}

// Attributes are configfs attribute values by name. In JSON, values that
// are decimal integers are written as numbers, as rtslib does; anything
// else is a string.
type Attributes map[string]string

// MarshalJSON implements json.Marshaler with sorted keys.
func (a Attributes) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		v := a[k]
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			b.WriteString(v)
		} else {
			vb, _ := json.Marshal(v)
			b.Write(vb)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON implements json.Unmarshaler: numbers, strings and booleans
// (as 1/0) are accepted.
func (a *Attributes) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := make(Attributes, len(raw))
	for k, v := range raw {
		s := strings.TrimSpace(string(v))
		switch {
		case s == "true":
			out[k] = "1"
		case s == "false":
			out[k] = "0"
		case strings.HasPrefix(s, `"`):
			var str string
			if err := json.Unmarshal(v, &str); err != nil {
				return fmt.Errorf("attribute %s: %w", k, err)
			}
			out[k] = str
		default:
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("attribute %s: %w", k, err)
			}
			out[k] = n.String()
		}
	}
	*a = out
	return nil
}

// MarshalIndent renders c the way targetcli saves it: sorted keys, two
// spaces of indent, a trailing newline.
func (c *SaveConfig) MarshalIndent() ([]byte, error) {
	// Round-trip through a generic map so that every object's keys are
	// sorted, like Python's json.dumps(sort_keys=True).
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ParseSaveConfig parses a saveconfig.json document.
func ParseSaveConfig(data []byte) (*SaveConfig, error) {
	var c SaveConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, errf("parse saveconfig: %w", err)
	}
	return &c, nil
}
