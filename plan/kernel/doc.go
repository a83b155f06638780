// Package kernel gives plan's ports their real implementations over the
// kernel packages, and the tools around them:
//
//	kernel.Ports(kernel.Options{...})          // dm (ioctl), initiator (iscsiadm + sysfs),
//	                                           // lio (configfs), loop devices, hooks as
//	                                           // processes, logind, clone's regulator
//	kernel.DryRunPorts(w, kernel.Options{})    // print what the ports would do, do nothing
//	kernel.Doctor(ctx, kernel.DoctorOptions{}) // preflight checks, each with its fix
//
// The adapters translate, nothing more: plan's Target to initiator's Node
// and its sentinels to plan's, dm devices to their /dev/dm-N nodes, an
// ExportSpec to lio's Export, a metadata file to its loop device. The plan
// package itself makes no syscall and names no kernel path.
package kernel
