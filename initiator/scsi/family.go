package scsi

import "fmt"

// Family is a designator's kind as the identity verdicts name it: the
// type, and for NAA the format.
type Family string

// The families.
const (
	FamilyNAA6           Family = "naa-6" // NAA IEEE Registered Extended (16 bytes)
	FamilyNAA5           Family = "naa-5" // NAA IEEE Registered (8 bytes)
	FamilyNAA3           Family = "naa-3" // NAA Locally Assigned
	FamilyNAA2           Family = "naa-2" // NAA IEEE Extended
	FamilyEUI64          Family = "eui-64"
	FamilyT10VendorID    Family = "t10-vendor-id"
	FamilySCSIName       Family = "scsi-name-string"
	FamilyMD5            Family = "md5"
	FamilyUUID           Family = "uuid"
	FamilyRelativePort   Family = "relative-target-port"
	FamilyTargetPortGrp  Family = "target-port-group"
	FamilyLogicalUnitGrp Family = "logical-unit-group"
	FamilyVendorSpecific Family = "vendor-specific"
)

// Family returns the designator's family.
func (d Designator) Family() Family {
	switch d.Type {
	case TypeNAA:
		switch d.NAA() {
		case NAAIEEERegisteredExtended:
			return FamilyNAA6
		case NAAIEEERegistered:
			return FamilyNAA5
		case NAALocallyAssigned:
			return FamilyNAA3
		case NAAIEEEExtended:
			return FamilyNAA2
		}
		return Family(fmt.Sprintf("naa-%d", d.NAA()))
	case TypeEUI64:
		return FamilyEUI64
	case TypeT10VendorID:
		return FamilyT10VendorID
	case TypeSCSIName:
		return FamilySCSIName
	case TypeMD5:
		return FamilyMD5
	case TypeUUID:
		return FamilyUUID
	case TypeRelativePort:
		return FamilyRelativePort
	case TypeTargetPortGroup:
		return FamilyTargetPortGrp
	case TypeLogicalUnitGroup:
		return FamilyLogicalUnitGrp
	case TypeVendorSpecific:
		return FamilyVendorSpecific
	}
	return Family(fmt.Sprintf("type-%d", d.Type))
}
