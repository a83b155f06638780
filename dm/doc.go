// Package dm is lunferry's device-mapper client: it talks to the kernel
// directly through ioctls on /dev/mapper/control (no cgo, no libdevmapper, no
// dmsetup) and knows the targets a migration needs as typed values.
//
// Layers, bottom up:
//
//   - ioctl.go: pure functions that build and parse the ioctl buffer (struct
//     dm_ioctl, dm_target_spec records padded to 8 bytes, dm_name_list,
//     dm_target_versions, dm_target_deps) from include/uapi/linux/dm-ioctl.h.
//   - one file per target (linear.go, clone.go, snapshot.go, era.go,
//     errortarget.go): a Target renders its table arguments, and each status
//     line parses into a typed struct.
//   - era_metadata.go, era_written.go, era_client.go: which blocks of an
//     era device were written since an era, read in pure Go from a held
//     metadata snapshot (superblock, writeset btree, era array).
//   - client.go: Client, one handle on the control node, with the device
//     operations; replace.go: the live table swap; node.go: block device
//     nodes made from sysfs when udev is absent.
//
// Everything lunferry creates carries NamePrefix and UUIDPrefix; Remove and
// Replace refuse other devices unless forced, Create refuses names without
// the prefixes.
package dm
