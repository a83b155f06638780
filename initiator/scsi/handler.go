package scsi

import "strings"

// deviceHandlers is the kernel's scsi_dh_blist (drivers/scsi/scsi_dh.c,
// 6.1): INQUIRY vendor and product prefixes for which a host binds the
// emc, hp_sw or rdac device handler. Those handlers send the array's own
// path-group commands (TRESPASS, START STOP UNIT to a passive path, RDAC
// mode pages), which LIO does not serve; multipath-tools' built-in
// hardware table names the same arrays.
var deviceHandlers = []struct{ vendor, product, handler string }{
	{"DGC", "RAID", "emc"}, {"DGC", "DISK", "emc"}, {"DGC", "VRAID", "emc"},
	{"COMPAQ", "MSA1000 VOLUME", "hp_sw"}, {"COMPAQ", "HSV110", "hp_sw"},
	{"HP", "HSV100", "hp_sw"}, {"DEC", "HSG80", "hp_sw"},
	{"IBM", "1722", "rdac"}, {"IBM", "1724", "rdac"}, {"IBM", "1726", "rdac"},
	{"IBM", "1742", "rdac"}, {"IBM", "1745", "rdac"}, {"IBM", "1746", "rdac"},
	{"IBM", "1813", "rdac"}, {"IBM", "1814", "rdac"}, {"IBM", "1815", "rdac"},
	{"IBM", "1818", "rdac"}, {"IBM", "3526", "rdac"}, {"IBM", "3542", "rdac"},
	{"IBM", "3552", "rdac"}, {"SGI", "TP9300", "rdac"}, {"SGI", "TP9400", "rdac"},
	{"SGI", "TP9500", "rdac"}, {"SGI", "TP9700", "rdac"}, {"SGI", "IS", "rdac"},
	{"STK", "OPENstorage", "rdac"}, {"STK", "FLEXLINE 380", "rdac"},
	{"STK", "BladeCtlr", "rdac"}, {"SUN", "CSM", "rdac"}, {"SUN", "LCSM100", "rdac"},
	{"SUN", "STK6580_6780", "rdac"}, {"SUN", "SUN_6180", "rdac"},
	{"SUN", "ArrayStorage", "rdac"}, {"DELL", "MD3", "rdac"},
	{"NETAPP", "INF-01-00", "rdac"}, {"LSI", "INF-01-00", "rdac"},
	{"ENGENIO", "INF-01-00", "rdac"}, {"LENOVO", "DE_Series", "rdac"},
	{"FUJITSU", "ETERNUS_AHB", "rdac"},
}

// DeviceHandler returns the device handler ("emc", "hp_sw", "rdac") a
// Linux host binds to a disk with this INQUIRY vendor and product, by
// prefix as scsi_dh_find_driver matches them; empty when none.
func DeviceHandler(vendor, product string) string {
	for _, h := range deviceHandlers {
		if strings.HasPrefix(vendor, h.vendor) && strings.HasPrefix(product, h.product) {
			return h.handler
		}
	}
	return ""
}
