package lio

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// AddrChecker tells whether an address can be listened on by this machine.
type AddrChecker interface {
	// IsLocal reports whether a is configured on a local interface (or
	// falls inside a local loopback prefix such as 127.0.0.0/8).
	IsLocal(a netip.Addr) (bool, error)
}

// NetlinkAddrs is the AddrChecker over the kernel's interface addresses
// (RTM_GETADDR through netlink), in the caller's network namespace.
type NetlinkAddrs struct{}

// IsLocal implements AddrChecker.
func (NetlinkAddrs) IsLocal(a netip.Addr) (bool, error) {
	addrs, err := netlink.AddrList(nil, 0 /* AF_UNSPEC: every family; netlink.FAMILY_ALL is Linux-only */)
	if err != nil {
		return false, fmt.Errorf("list interface addresses: %w", err)
	}
	prefixes := make([]netip.Prefix, 0, len(addrs))
	for _, x := range addrs {
		if x.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(x.IP)
		if !ok {
			continue
		}
		ones, _ := x.Mask.Size()
		prefixes = append(prefixes, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return addrIsLocal(a, prefixes), nil
}

// StaticAddrs is an AddrChecker over a fixed list of interface prefixes,
// for tests and for callers that gathered the addresses themselves.
type StaticAddrs []netip.Prefix

// IsLocal implements AddrChecker.
func (s StaticAddrs) IsLocal(a netip.Addr) (bool, error) { return addrIsLocal(a, s), nil }

// addrIsLocal: a is local if an interface has exactly that address, or if
// it is a loopback address inside a loopback prefix of an interface (Linux
// answers for all of 127.0.0.0/8 once lo has 127.0.0.1/8).
func addrIsLocal(a netip.Addr, prefixes []netip.Prefix) bool {
	a = a.Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Addr().Unmap() == a {
			return true
		}
		if a.IsLoopback() && p.Addr().IsLoopback() && p.Masked().Contains(a) {
			return true
		}
	}
	return false
}
