//go:build tools

// Package lunferry pins the project's designed dependencies so that `go mod
// tidy` keeps them while packages are still growing into them.
package lunferry

import (
	_ "github.com/godbus/dbus/v5"
	_ "github.com/stretchr/testify/require"
	_ "github.com/urfave/cli/v2"
	_ "github.com/vishvananda/netlink"
	_ "golang.org/x/sys/unix"
)
