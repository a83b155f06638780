// Package lio drives the Linux kernel's SCSI target (LIO) through its
// configfs tree, without targetcli at run time: it exports a block device
// (or a file, or memory) over iSCSI to the hosts allowed in, safely and
// idempotently, and reads back and dumps what it wrote in targetcli's
// saveconfig.json format.
//
// # Handle and objects
//
// A Root is a handle on the tree (default DefaultConfigFSRoot,
// /sys/kernel/config/target); its zero value works, NewRoot(Options{...})
// sets the root directory, the filesystem (FS) and the portal address
// checker (AddrChecker). There is one type per configfs object, named as
// rtslib names them, each deriving its path from its parent:
//
//	core/<hba>/<name>                    BlockStorageObject (iblock_N),
//	                                     FileIOStorageObject (fileio_N),
//	                                     RamdiskStorageObject (rd_mcp_N);
//	                                     StorageObjectInfo when read back
//	iscsi/<iqn>                          Target
//	iscsi/<iqn>/tpgt_<tag>               TPG (attrib/, param/, enable)
//	.../tpgt_<tag>/lun/lun_<n>/<alias>   LUN (symlink to the storage object)
//	.../tpgt_<tag>/np/<addr>:<port>      NetworkPortal ([v6]:port for IPv6)
//	.../tpgt_<tag>/acls/<iqn>            NodeACL (auth/ holds CHAP)
//	.../acls/<iqn>/lun_<n>/<alias>       MappedLUN (symlink to the TPG LUN,
//	                                     write_protect)
//
// # Main API
//
//	func NewRoot(o Options) *Root
//	func (r *Root) Apply(ctx context.Context, e Export) error
//	func (r *Root) Teardown(ctx context.Context, targetIQN string, o TeardownOptions) error
//	func (r *Root) Sessions(targetIQN string) ([]Session, error)
//	func (r *Root) Describe(ctx context.Context, targetIQN string) (*TargetState, error)
//	func (g TPG) Serves(name, dev, initiatorIQN string) (bool, error)  // r.Target(iqn).TPG(1)
//	func (r *Root) Dump(ctx context.Context) (*SaveConfig, error)
//	func (r *Root) Restore(ctx context.Context, c *SaveConfig) error
//	func (r *Root) CreateStorageObject(ctx context.Context, so StorageObject) error
//	func (r *Root) DeleteStorageObject(ctx context.Context, b Backstore, name string) error
//	func (r *Root) StorageObjects() ([]StorageObjectInfo, error)
//	func (r *Root) Targets() ([]Target, error)
//	func ValidateIQN(name string) error
//
// Export is the desired state of one exported LUN: a storage object named
// Name (with NamePrefix) on Device, target TargetIQN with TPG 1, the LUN,
// its Portals, and one ACL per allowed initiator (optional CHAP, one-way or
// mutual, optional read-only mapping). Apply creates, in order, storage
// object → target → TPG → LUN → portals → ACLs → enable; run again it
// changes nothing (attributes are compared before they are written) or
// converges (portals, ACLs and LUNs no longer listed are removed). If it
// fails, it removes what that call created, newest first. Teardown removes
// in the reverse order, including the storage object and its HBA
// directory; TeardownOptions.StorageObjects names storage objects to delete
// even if the target is already gone, so that a teardown interrupted
// halfway can be finished by running it again.
//
// # Secure by default
//
// Every TPG lio writes has generate_node_acls=0 (no demo mode: an initiator
// without an ACL cannot log in), demo_mode_write_protect=1 and
// cache_dynamic_acls=0; Export and Restore refuse to change these.
// authentication=1 is set on the TPG (and on each ACL) when CHAP is given,
// 0 otherwise; an export's ACLs have CHAP all or none. Portal addresses
// must be on a local interface (checked with netlink; 0.0.0.0 and :: are
// allowed). CHAP secrets never appear in error messages, in CHAP's String
// or JSON form, or in a Recorder's log.
//
// # Ownership: lio never touches what lunferry did not create
//
//   - A storage object is lunferry's if its name starts with NamePrefix
//     ("lunferry-"). lio gives each one an HBA directory of its own,
//     created with it and removed with it.
//   - An iSCSI target is lunferry's if every TPG in it has a TargetAlias
//     parameter starting with NamePrefix (lio writes it right after
//     creating the TPG, before anything else) and every LUN in it links to
//     a lunferry storage object. A TPG that is disabled and has no LUN,
//     portal or ACL counts as lunferry's whatever its alias, and so does a
//     target without any TPG: that is what an Apply interrupted between
//     two mkdirs, or between a mkdir and the alias, leaves, and there is
//     nothing in them to lose.
//
// Apply onto a foreign target IQN, Teardown of a foreign target and
// DeleteStorageObject of a foreign name fail with an error wrapping
// ErrNotOwned that tells the admin what to do; Dump leaves foreign objects
// out. Teardown refuses a target with logged-in initiators
// (*SessionsActiveError) unless TeardownOptions.Force is set.
//
// # saveconfig.json
//
// Dump and Restore use SaveConfig, which mirrors rtslib-fb's dump schema
// (storage_objects, targets → tpgs → luns, portals, node_acls →
// mapped_luns, attributes, parameters, chap_*), so that `targetcli
// restoreconfig` can load what Dump wrote and Restore can load the
// lunferry part (SaveConfig.Owned) of what `targetcli saveconfig` wrote.
// The wwn vendor, product, revision and company id have no place in that
// schema and are not restored.
//
// # Testing and dry runs
//
// FS is the seam: OSFS goes to the kernel; package lio/configfstest is a
// fake configfs enforcing the kernel's rules (default groups, symlink
// rules, EBUSY on a used object, read-only and write-only attributes,
// control before enable) for unit tests without root; Recorder wraps an FS
// and reports every mkdir, rmdir, symlink, unlink and write (secrets
// masked), and with DryRun makes none of them.
//
// Kernel tests (lio_kernel_test.go) run in the lab VM only
// (vmtest.Require): they export a loop device, log in with iscsiadm, check
// reads and writes, CHAP, ACL refusal, idempotency, dry runs, and that
// targetcli reads what lio wrote.
package lio
