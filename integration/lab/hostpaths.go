package lab

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// HostAddPaths logs the host in to role (an array's name or "proxy") and
// waits until the disk behind that session is a serving path of a
// multipath map (multipathd adds it on its uevent; after a few seconds it
// is asked to). It returns the map and the disk.
func (c *Config) HostAddPaths(role string, timeout time.Duration) (Map, string, error) {
	portal, iqn, err := c.Target(role)
	if err != nil {
		return Map{}, "", err
	}
	deadline := time.Now().Add(timeout)
	dev, err := c.Host.Login(portal, iqn, timeout)
	if err != nil {
		return Map{}, "", err
	}
	disk := filepath.Base(dev)
	asked := time.Now().Add(5 * time.Second)
	for {
		mp, err := c.HostCheckPaths(role)
		if err == nil {
			return mp, disk, nil
		}
		if time.Now().After(deadline) {
			return Map{}, disk, fmt.Errorf("lab: host: %s after %s\n%s", err, timeout, c.Multipath().Show())
		}
		if time.Now().After(asked) {
			if err := c.Multipath().AddPath(disk); err != nil {
				return Map{}, disk, err
			}
			asked = deadline
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// HostCheckPaths returns the host's map when the disk behind its session
// to role is a serving path of it, and an error saying what is missing
// otherwise.
func (c *Config) HostCheckPaths(role string) (Map, error) {
	_, iqn, err := c.Target(role)
	if err != nil {
		return Map{}, err
	}
	disk := c.Host.SessionDisk(iqn)
	if disk == "" {
		return Map{}, fmt.Errorf("the host has no disk behind a session to %s", iqn)
	}
	mp, ok, err := MapOf(c.Host.sys(), disk)
	if err != nil {
		return Map{}, err
	}
	if !ok {
		return Map{}, fmt.Errorf("the host's disk %s (%s) is in no multipath map", disk, iqn)
	}
	p, known, err := c.Multipath().Path(disk)
	if err != nil {
		return Map{}, err
	}
	if !known || !p.Serving() {
		return Map{}, fmt.Errorf("the host's disk %s (%s) is in map %s but not serving (multipathd: %+v)", disk, iqn, mp.Name, p)
	}
	return mp, nil
}

// HostRemovePaths takes the disk behind the host's session to role out of
// its multipath map (multipathd del path) and logs the host out of role.
// No session is fine.
func (c *Config) HostRemovePaths(role string) error {
	portal, iqn, err := c.Target(role)
	if err != nil {
		return err
	}
	if disk := c.Host.SessionDisk(iqn); disk != "" {
		if _, known, err := c.Multipath().Path(disk); err != nil {
			return err
		} else if known {
			if err := c.Multipath().DelPath(disk); err != nil {
				return err
			}
		}
	}
	return c.Host.Logout(portal, iqn)
}

// HostMap returns the multipath map holding the host's paths (the one of
// its first session with a disk in a map).
func (c *Config) HostMap() (Map, error) {
	var seen []string
	for _, iqn := range c.Host.Sessions() {
		disk := c.Host.SessionDisk(iqn)
		if disk == "" {
			continue
		}
		mp, ok, err := MapOf(c.Host.sys(), disk)
		if err != nil {
			return Map{}, err
		}
		if ok {
			return mp, nil
		}
		seen = append(seen, disk+" ("+iqn+")")
	}
	return Map{}, fmt.Errorf("lab: host: no multipath map over the host's disks [%s]", strings.Join(seen, ", "))
}

// HostMountMap mounts the host's multipath map at the host's mount point
// and returns its node.
func (c *Config) HostMountMap() (string, error) {
	mp, err := c.HostMap()
	if err != nil {
		return "", err
	}
	dev, err := ensureNode(filepath.Base(mp.Dev))
	if err != nil {
		return "", err
	}
	return dev, c.Host.MountDisk(dev)
}
