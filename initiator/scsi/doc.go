// Package scsi reads a SCSI logical unit's identity through the SG_IO
// ioctl (no sg3-utils at run time) and computes the LIO settings that
// show a host the same identity through a proxy's export.
//
// # Reading
//
//	id, err := scsi.Read("/dev/sdc")             // Identity
//	r, err := scsi.ReadReservations("/dev/sdc")  // Reservations
//	d, err := scsi.Open("/dev/sdc"); scsi.ReadFrom(d)  // any Commander
//	m, err := scsi.ReadLBAMap("/dev/sdc")        // LBAMap (GET LBA STATUS)
//
// An Identity holds the standard INQUIRY data (vendor, product,
// revision, device type, TPGS, 3PC, PROTECT), VPD pages 0x00 (supported
// pages), 0x80 (unit serial), 0x83 (every designator: code set,
// association, type, protocol, value), 0xB0 (block limits), 0xB2 (logical
// block provisioning) and READ CAPACITY(16) (last LBA, logical block
// size, physical block exponent, lowest aligned LBA, LBPME/LBPRZ,
// protection). INQUIRY, page 0x83 and READ CAPACITY(16) must work; the
// other pages may be missing. Identity.WWID is the identifier a Linux
// host derives from page 0x83 (HostWWID follows the kernel's
// scsi_vpd_lun_id). Reservations are the registered keys (READ KEYS) and
// the reservation held (READ RESERVATION). An LBAMap is a thin LU's
// provisioning status from LBA 0 to its last (GET LBA STATUS, asked again
// from where an answer cut short by its allocation length stopped), with
// READ CAPACITY(16)'s LBPME and LBPRZ; a fully provisioned LU is not asked.
//
// Every command is built and every response parsed by pure functions,
// tested on golden bytes; the SG_IO header too (sgIOHdr, newSgIOHdr,
// result). Device (sgio_linux.go) only makes the ioctl; a Commander is
// what tests replace. A command sees a UNIT ATTENTION up to three times
// before it fails, and variable-length answers are asked for again with
// their full length.
//
// # Errors
//
// A command that ends in CHECK CONDITION is a *CheckConditionError with
// the decoded Sense (key, ASC, ASCQ; fixed or descriptor format); it
// matches ErrIllegalRequest, ErrUnitAttention and ErrNotReady by sense
// key. Another status or a transport failure is a *StatusError (matching
// ErrReservationConflict for RESERVATION CONFLICT). Answers that break
// their format wrap ErrMalformed. Off Linux, Open returns
// ErrNotImplemented.
//
// # Reproducing an identity on LIO
//
//	e, v := scsi.ForLIO(id, volumeName)  // Export, Verdict
//
// Export holds the lio.WWN (company_id, vpd_unit_serial, vendor, product,
// revision) and attrib/block_size of the export. LIO's NAA 6 designator
// is 6, wwn/company_id and the first 25 hex digits of vpd_unit_serial
// (LIONAA, after target_core_spc.c), so any 16-byte NAA 6 designator of
// the logical unit is reproduced exactly: company id from its bits 59-36,
// serial from its last 25 hex digits (the old serial itself when its hex
// digits already begin with them, keeping page 0x80 too). NAA 5, 3 and 2,
// EUI-64, T10 vendor ID, SCSI name string and MD5 designators are not
// (Reproducible says why): the Verdict names what the host will see
// instead, a new NAA 6 under LIO's company id whose serial is derived
// from the volume name and the old WWID, the same on every call. INQUIRY
// strings that would make a host bind the emc, hp_sw or rdac device
// handler (DeviceHandler) are not carried. Verdict.Notes list every other
// difference a host can see (page 0x80, designators left behind, block
// geometry LIO cannot set).
package scsi
