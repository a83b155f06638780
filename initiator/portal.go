package initiator

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the IANA iSCSI port.
const DefaultPort = 3260

// Portal is an iSCSI network portal: an IP address and a TCP port.
type Portal struct {
	// Addr is the portal's IPv4 or IPv6 address (no zone).
	Addr netip.Addr
	// Port is the TCP port; 0 means DefaultPort.
	Port uint16
}

// ParsePortal parses "192.0.2.10", "192.0.2.10:3260", "2001:db8::1",
// "[2001:db8::1]" or "[2001:db8::1]:3260". Host names are refused: a
// proxy's portals are configured by address so that sysfs sessions can be
// matched to them.
func ParsePortal(s string) (Portal, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		p := Portal{Addr: ap.Addr(), Port: ap.Port()}
		return p, p.Validate()
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return Portal{}, fmt.Errorf("initiator: parse portal %q: want an IP address with optional :port (IPv6 as [addr]:port)", s)
	}
	p := Portal{Addr: a}
	return p, p.Validate()
}

// Validate checks that the portal has a usable address.
func (p Portal) Validate() error {
	if !p.Addr.IsValid() {
		return fmt.Errorf("initiator: portal has no address")
	}
	if p.Addr.Zone() != "" {
		return fmt.Errorf("initiator: portal %s: IPv6 zones are not supported, use a routable address", p.Addr)
	}
	return nil
}

func (p Portal) port() uint16 {
	if p.Port == 0 {
		return DefaultPort
	}
	return p.Port
}

// addr renders the address as open-iscsi stores it in node records and
// record paths: IPv4 dotted, IPv6 compressed without brackets.
func (p Portal) addr() string { return p.Addr.Unmap().String() }

// String renders "192.0.2.10:3260" or "[2001:db8::1]:3260", the form
// iscsiadm's -p option takes.
func (p Portal) String() string {
	return netip.AddrPortFrom(p.Addr.Unmap(), p.port()).String()
}

// Equal reports whether p and q are the same portal (port 0 meaning 3260).
func (p Portal) Equal(q Portal) bool {
	return p.Addr.Unmap() == q.Addr.Unmap() && p.port() == q.port()
}

// Node is one iSCSI target reached through one portal and portal group:
// the unit open-iscsi keeps a node record for and logs in to.
type Node struct {
	// TargetIQN is the target name (iqn. or eui. or naa. form).
	TargetIQN string
	// Portal is the target's network portal.
	Portal Portal
	// TPGT is the target portal group tag. 0 means unknown: Login then
	// learns it through SendTargets discovery on Portal.
	TPGT int
}

// String renders "192.0.2.10:3260,1 iqn.…", the form iscsiadm prints.
func (n Node) String() string {
	return n.portalArg() + " " + n.TargetIQN
}

// portalArg renders the -p argument: "addr:port" plus ",tpgt" when known.
func (n Node) portalArg() string {
	if n.TPGT > 0 {
		return n.Portal.String() + "," + strconv.Itoa(n.TPGT)
	}
	return n.Portal.String()
}

// Validate checks the node's target name and portal.
func (n Node) Validate() error {
	if err := ValidateTargetName(n.TargetIQN); err != nil {
		return err
	}
	if n.TPGT < 0 || n.TPGT > 65535 {
		return fmt.Errorf("initiator: node %s: tpgt %d out of range 1-65535", n.TargetIQN, n.TPGT)
	}
	return n.Portal.Validate()
}

// ValidateTargetName checks an iSCSI name (RFC 3720 section 3.2.6): iqn.,
// eui. or naa. form, at most 223 bytes, no spaces, slashes or commas (which
// would break open-iscsi's record paths and output).
func ValidateTargetName(name string) error {
	if name == "" {
		return fmt.Errorf("initiator: empty target name")
	}
	if len(name) > 223 {
		return fmt.Errorf("initiator: target name %.40q…: longer than 223 bytes", name)
	}
	lower := strings.ToLower(name)
	if !strings.HasPrefix(lower, "iqn.") && !strings.HasPrefix(lower, "eui.") && !strings.HasPrefix(lower, "naa.") {
		return fmt.Errorf("initiator: target name %q: must start with iqn., eui. or naa.", name)
	}
	for _, r := range name {
		if r <= ' ' || r == '/' || r == ',' || r == 0x7f {
			return fmt.Errorf("initiator: target name %q: contains %q, which iSCSI names may not", name, r)
		}
	}
	return nil
}

// parseDiscovery parses iscsiadm's flat node listing, one node a line:
//
//	192.0.2.10:3260,1 iqn.2003-01.org.linux-iscsi.host:t1
//	[2001:db8::1]:3260,1 iqn.2003-01.org.linux-iscsi.host:t1
//
// (idbm_print_node_flat: "%s:%d,%d %s" for addresses with a dot, else
// "[%s]:%d,%d %s"). Lines that do not parse are reported as an error: the
// format has been stable for a decade and a change must not go unnoticed.
func parseDiscovery(out []byte) ([]Node, error) {
	var nodes []Node
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		portalTag, iqn, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("initiator: unexpected iscsiadm node line %q", line)
		}
		i := strings.LastIndexByte(portalTag, ',')
		if i < 0 {
			return nil, fmt.Errorf("initiator: unexpected iscsiadm node line %q: no tpgt", line)
		}
		tpgt, err := strconv.Atoi(portalTag[i+1:])
		if err != nil {
			return nil, fmt.Errorf("initiator: unexpected iscsiadm node line %q: tpgt: %w", line, err)
		}
		ap, err := netip.ParseAddrPort(portalTag[:i])
		if err != nil {
			// A target may answer SendTargets with a host name; lunferry
			// cannot match such portals to sessions, so it skips them.
			continue
		}
		nodes = append(nodes, Node{
			TargetIQN: strings.TrimSpace(iqn),
			Portal:    Portal{Addr: ap.Addr().Unmap(), Port: ap.Port()},
			TPGT:      tpgt,
		})
	}
	return nodes, sc.Err()
}
