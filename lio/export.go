package lio

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultPort is the iSCSI port a Portal with Port 0 listens on.
const DefaultPort = 3260

// maxLUN is the highest TPG LUN index rtslib/targetcli accept.
const maxLUN = 65535

// maxMappedLUN is the highest mapped LUN index rtslib/targetcli accept.
const maxMappedLUN = 255

// Export is the desired state of one LUN exported over iSCSI, the unit a
// cutover plan applies and tears down: a storage object on Device, an
// iSCSI target with one TPG, the LUN, the portals, and one ACL per allowed
// initiator, each mapping the LUN under the same number.
type Export struct {
	// Name is the storage object's name; it must start with NamePrefix.
	// It also becomes the TPG's TargetAlias, lunferry's ownership mark.
	Name string
	// Backstore is the storage object kind (default BackstoreBlock).
	Backstore Backstore
	// Device is the block device (block) or file (fileio) to export.
	Device string
	// Size in bytes: required for a fileio regular file and for ramdisk.
	Size uint64
	// ReadOnly write-protects the LUN for every initiator (and opens a
	// block device read-only).
	ReadOnly bool
	// WWN is the SCSI identity of the LUN; keep it stable across a cutover
	// so that the host's multipath sees the same disk.
	WWN WWN
	// Attributes are written to the storage object's attrib/.
	Attributes map[string]string

	// TargetIQN is the iSCSI target name (validated by ValidateIQN).
	TargetIQN string
	// TPG is the portal group tag (default 1).
	TPG uint16
	// TPGAttributes are written to the TPG's attrib/ (e.g. login_timeout).
	// The attributes that enforce ACLs and CHAP are lio's and cannot be
	// set here.
	TPGAttributes map[string]string
	// Portals are the addresses the target listens on. At least one.
	Portals []Portal
	// LUN is the LUN number, for the TPG and for every initiator.
	LUN uint64
	// ACLs are the initiators allowed to log in. At least one; an
	// initiator without an ACL cannot log in.
	ACLs []ACL
}

// Portal is a listening address. The unspecified addresses (0.0.0.0, ::)
// listen on every interface.
type Portal struct {
	// Addr is the IPv4 or IPv6 address.
	Addr netip.Addr
	// Port is the TCP port (0 means DefaultPort).
	Port uint16
}

// AddrPort returns the portal as an address and port.
func (p Portal) AddrPort() netip.AddrPort {
	port := p.Port
	if port == 0 {
		port = DefaultPort
	}
	return netip.AddrPortFrom(p.Addr.Unmap(), port)
}

// ACL allows one initiator in.
type ACL struct {
	// InitiatorIQN is the initiator's iSCSI name.
	InitiatorIQN string
	// CHAP, when set, requires the initiator to authenticate. Either all
	// ACLs of an export have CHAP or none do.
	CHAP *CHAP
	// ReadOnly write-protects the LUN for this initiator.
	ReadOnly bool
}

// CHAP holds CHAP credentials for one ACL. One-way CHAP (the initiator
// proves itself) needs UserID and Password; mutual CHAP (the target proves
// itself too) adds MutualUserID and MutualPassword. The passwords are kept
// out of JSON and out of String, so that a CHAP never lands in lunferry's
// state or logs by accident.
type CHAP struct {
	// UserID is the name the initiator sends (auth/userid).
	UserID string
	// Password is the initiator's secret (auth/password).
	Password string `json:"-"`
	// MutualUserID is the name the target sends (auth/userid_mutual).
	MutualUserID string
	// MutualPassword is the target's secret (auth/password_mutual).
	MutualPassword string `json:"-"`
}

// String implements fmt.Stringer without the secrets.
func (c *CHAP) String() string {
	if c == nil {
		return "none"
	}
	if c.MutualUserID != "" {
		return fmt.Sprintf("mutual CHAP (user %s, target user %s)", c.UserID, c.MutualUserID)
	}
	return fmt.Sprintf("CHAP (user %s)", c.UserID)
}

// GoString implements fmt.GoStringer without the secrets.
func (c *CHAP) GoString() string { return c.String() }

// Validate checks the credentials against what LIO and RFC 3720 accept.
func (c *CHAP) Validate() error {
	check := func(what, v string) error {
		if v == "" {
			return fmt.Errorf("%w: CHAP %s is empty", ErrInvalidConfig, what)
		}
		if len(v) > 255 {
			return fmt.Errorf("%w: CHAP %s is longer than 255 bytes", ErrInvalidConfig, what)
		}
		if v == "NULL" {
			return fmt.Errorf("%w: CHAP %s cannot be \"NULL\" (LIO reads it as unset)", ErrInvalidConfig, what)
		}
		for _, r := range v {
			if r < 0x21 || r > 0x7e {
				return fmt.Errorf("%w: CHAP %s must be printable ASCII without spaces", ErrInvalidConfig, what)
			}
		}
		return nil
	}
	if err := check("user id", c.UserID); err != nil {
		return err
	}
	if err := check("password", c.Password); err != nil {
		return err
	}
	if c.MutualUserID == "" && c.MutualPassword == "" {
		return nil
	}
	if err := check("mutual user id", c.MutualUserID); err != nil {
		return err
	}
	if err := check("mutual password", c.MutualPassword); err != nil {
		return err
	}
	if c.MutualPassword == c.Password {
		return fmt.Errorf("%w: the mutual CHAP password must differ from the initiator's (RFC 3720 §8.2.1; open-iscsi and LIO refuse equal secrets)", ErrInvalidConfig)
	}
	return nil
}

// managedTPGAttrs returns the TPG attributes lio sets itself: the secure
// ones and authentication, which follows CHAP.
func managedTPGAttrs() []string {
	names := make([]string, 0, len(secureTPGAttrs)+1)
	for _, s := range secureTPGAttrs {
		names = append(names, s.name)
	}
	return append(names, "authentication")
}

// Validate checks e without touching configfs or the network.
func (e *Export) Validate() error {
	if err := ValidateStorageObjectName(e.Name); err != nil {
		return errf("export: %w", err)
	}
	if err := ValidateIQN(e.TargetIQN); err != nil {
		return errf("export %s: target: %w", e.Name, err)
	}
	if err := e.storageSpec().validate(); err != nil {
		return errf("export %s: %w", e.Name, err)
	}
	if e.LUN > maxLUN {
		return errf("export %s: %w: LUN %d is above %d", e.Name, ErrInvalidConfig, e.LUN, maxLUN)
	}
	if e.LUN > maxMappedLUN {
		return errf("export %s: %w: LUN %d is above %d, the highest LUN an initiator can be given", e.Name, ErrInvalidConfig, e.LUN, maxMappedLUN)
	}
	if err := e.validatePortals(); err != nil {
		return err
	}
	if err := e.validateACLs(); err != nil {
		return err
	}
	if err := validateAttrNames(e.TPGAttributes); err != nil {
		return errf("export %s: tpg: %w", e.Name, err)
	}
	for _, k := range managedTPGAttrs() {
		if _, ok := e.TPGAttributes[k]; ok {
			return errf("export %s: %w: tpg attribute %s is managed by lio (ACLs are always enforced, authentication follows CHAP)", e.Name, ErrInvalidConfig, k)
		}
	}
	return nil
}

// validatePortals checks that e has portals, each with an address LIO can
// listen on, none twice.
func (e *Export) validatePortals() error {
	if len(e.Portals) == 0 {
		return errf("export %s: %w: no portal; give at least one address to listen on", e.Name, ErrInvalidConfig)
	}
	seen := map[netip.AddrPort]bool{}
	for _, p := range e.Portals {
		if !p.Addr.IsValid() {
			return errf("export %s: %w: portal without an address", e.Name, ErrInvalidName)
		}
		if p.Addr.Zone() != "" {
			return errf("export %s: %w: portal %s: link-local zones are not supported by LIO portals", e.Name, ErrInvalidName, p.Addr)
		}
		ap := p.AddrPort()
		if seen[ap] {
			return errf("export %s: %w: portal %s given twice", e.Name, ErrInvalidConfig, ap)
		}
		seen[ap] = true
	}
	return nil
}

// validateACLs checks that e has ACLs, each for a valid initiator name,
// none twice, and CHAP on all of them or none.
func (e *Export) validateACLs() error {
	if len(e.ACLs) == 0 {
		return errf("export %s: %w: no ACL; name at least one initiator IQN allowed to log in", e.Name, ErrInvalidConfig)
	}
	seen := map[string]bool{}
	withCHAP := 0
	for _, a := range e.ACLs {
		if err := ValidateIQN(a.InitiatorIQN); err != nil {
			return errf("export %s: acl: %w", e.Name, err)
		}
		if seen[a.InitiatorIQN] {
			return errf("export %s: %w: initiator %s listed twice", e.Name, ErrInvalidConfig, a.InitiatorIQN)
		}
		seen[a.InitiatorIQN] = true
		if a.CHAP != nil {
			withCHAP++
			if err := a.CHAP.Validate(); err != nil {
				return errf("export %s: acl %s: %w", e.Name, a.InitiatorIQN, err)
			}
		}
	}
	if withCHAP != 0 && withCHAP != len(e.ACLs) {
		return errf("export %s: %w: %d of %d ACLs have CHAP; give every initiator CHAP credentials or none (LIO enforces authentication per portal group)", e.Name, ErrInvalidConfig, withCHAP, len(e.ACLs))
	}
	return nil
}

func (e *Export) backstore() Backstore {
	if e.Backstore == "" {
		return BackstoreBlock
	}
	return e.Backstore
}

func (e *Export) tag() uint16 {
	if e.TPG == 0 {
		return 1
	}
	return e.TPG
}

// StorageObject returns the export's storage object.
func (e *Export) StorageObject() StorageObject {
	switch e.backstore() {
	case BackstoreFileIO:
		return &FileIOStorageObject{Name: e.Name, File: e.Device, Size: e.Size, WWN: e.WWN, Attributes: e.Attributes}
	case BackstoreRamdisk:
		return &RamdiskStorageObject{Name: e.Name, Size: e.Size, WWN: e.WWN, Attributes: e.Attributes}
	default:
		return &BlockStorageObject{Name: e.Name, Dev: e.Device, ReadOnly: e.ReadOnly, WWN: e.WWN, Attributes: e.Attributes}
	}
}

func (e *Export) storageSpec() soSpec {
	if e.backstore() != BackstoreBlock && e.backstore() != BackstoreFileIO && e.backstore() != BackstoreRamdisk {
		return soSpec{cfg: StorageObjectConfig{Name: e.Name, Plugin: string(e.backstore())}}
	}
	return e.StorageObject().spec()
}

// TargetConfig returns the export as the target it configures, in
// saveconfig form (secure attributes included).
func (e *Export) TargetConfig() TargetConfig {
	so := e.storageSpec().cfg
	auth := "0"
	if len(e.ACLs) > 0 && e.ACLs[0].CHAP != nil {
		auth = "1"
	}
	attrs := Attributes{"authentication": auth}
	for _, s := range secureTPGAttrs {
		attrs[s.name] = s.value
	}
	for k, v := range e.TPGAttributes {
		attrs[k] = v
	}
	g := TPGConfig{
		Tag:        e.tag(),
		Enable:     true,
		Attributes: attrs,
		Parameters: map[string]string{"TargetAlias": e.Name},
		LUNs:       []LUNConfig{{Index: e.LUN, StorageObject: so.Path(), Alias: e.Name}},
	}
	for _, p := range e.Portals {
		ap := p.AddrPort()
		host, _ := strings.CutSuffix(portalName(ap), fmt.Sprintf(":%d", ap.Port()))
		g.Portals = append(g.Portals, PortalConfig{IPAddress: host, Port: ap.Port()})
	}
	for _, a := range e.ACLs {
		n := NodeACLConfig{
			NodeWWN:    a.InitiatorIQN,
			MappedLUNs: []MappedLUNConfig{{Index: e.LUN, TPGLUN: e.LUN, WriteProtect: e.ReadOnly || a.ReadOnly, Alias: e.Name}},
		}
		if a.CHAP != nil {
			n.ChapUserID, n.ChapPassword = a.CHAP.UserID, a.CHAP.Password
			n.ChapMutualUserID, n.ChapMutualPassword = a.CHAP.MutualUserID, a.CHAP.MutualPassword
			n.Attributes = Attributes{"authentication": "1"}
		}
		g.NodeACLs = append(g.NodeACLs, n)
	}
	return TargetConfig{Fabric: fabricISCSI, WWN: e.TargetIQN, TPGs: []TPGConfig{g}}
}
