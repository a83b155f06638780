// Command lunferry moves a live SAN LUN from an old array to a new one
// through a Linux storage proxy: open-iscsi attaches both LUNs,
// device-mapper clone hydrates the new LUN from the old one in the
// background, LIO exports the clone to the application host. See
// `lunferry --help` for the workflow and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// version is the build's version: make deb sets it (-ldflags -X
// main.version=...), other builds say dev.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := unix.IoctlGetTermios(int(os.Stdout.Fd()), unix.TCGETS)
	code := run(ctx, env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, isTTY: err == nil}, os.Args)
	stop()
	os.Exit(code)
}
