package lio

import (
	"fmt"
	"strconv"
	"strings"
)

// maxIQNLen is the longest iSCSI name RFC 3720 §3.2.6.1 allows (223 bytes);
// LIO's ISCSI_IQN_LEN (224) includes the terminating NUL.
const maxIQNLen = 223

// ValidateIQN checks that name is an iSCSI name as RFC 3720 §3.2.6.3 defines
// it, in one of its three formats:
//
//	iqn.YYYY-MM.<reversed domain>[:<unique>]   e.g. iqn.2026-11.io.lunferry:proxy
//	eui.<16 hex digits>                        e.g. eui.02004567A425678D
//	naa.<16 or 32 hex digits>                  e.g. naa.52004567BA64678D
//
// The naming authority of an iqn name may be a single label
// ("iqn.2024-01.lab:x"): RFC 3720 and the kernel accept it although
// targetcli/rtslib refuse it. Only the characters RFC 3722's stringprep
// profile leaves in ASCII names are accepted in iqn names: lower-case
// letters, digits, '-', '.' and ':'.
func ValidateIQN(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty iSCSI name", ErrInvalidName)
	}
	if len(name) > maxIQNLen {
		return fmt.Errorf("%w: iSCSI name %q is %d bytes, the limit is %d", ErrInvalidName, name, len(name), maxIQNLen)
	}
	switch {
	case strings.HasPrefix(name, "iqn."):
		return validateIQNFormat(name)
	case strings.HasPrefix(name, "eui."):
		if !isHex(name[4:]) || len(name[4:]) != 16 {
			return fmt.Errorf("%w: %q: an eui. name is \"eui.\" followed by exactly 16 hex digits", ErrInvalidName, name)
		}
		return nil
	case strings.HasPrefix(name, "naa."):
		if n := len(name[4:]); !isHex(name[4:]) || (n != 16 && n != 32) {
			return fmt.Errorf("%w: %q: an naa. name is \"naa.\" followed by 16 or 32 hex digits", ErrInvalidName, name)
		}
		return nil
	}
	return fmt.Errorf("%w: %q: an iSCSI name starts with \"iqn.\", \"eui.\" or \"naa.\" (lower case), e.g. iqn.2026-11.com.example:storage", ErrInvalidName, name)
}

func validateIQNFormat(name string) error {
	const example = "iqn.2026-11.com.example:lun1"
	rest := name[len("iqn."):]
	// Date: YYYY-MM followed by '.'.
	if len(rest) < 8 || rest[4] != '-' || rest[7] != '.' {
		return fmt.Errorf("%w: %q: expected iqn.YYYY-MM.<reversed domain>[:<id>], e.g. %s", ErrInvalidName, name, example)
	}
	year, yerr := strconv.Atoi(rest[:4])
	month, merr := strconv.Atoi(rest[5:7])
	if yerr != nil || merr != nil || !isDigits(rest[:4]) || !isDigits(rest[5:7]) || year < 1900 || month < 1 || month > 12 {
		return fmt.Errorf("%w: %q: the date after \"iqn.\" must be YYYY-MM with a month 01-12, e.g. %s", ErrInvalidName, name, example)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':'
		if !ok {
			hint := ""
			if r >= 'A' && r <= 'Z' {
				hint = " (iSCSI names are case-insensitive and must be written in lower case)"
			}
			return fmt.Errorf("%w: %q: character %q at offset %d is not allowed; use a-z, 0-9, '-', '.' and ':'%s", ErrInvalidName, name, r, i, hint)
		}
	}
	authority, _, _ := strings.Cut(rest[8:], ":")
	if authority == "" {
		return fmt.Errorf("%w: %q: the reversed domain name after the date is missing, e.g. %s", ErrInvalidName, name, example)
	}
	for _, label := range strings.Split(authority, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: %q: %q is not a valid reversed domain name", ErrInvalidName, name, authority)
		}
	}
	return nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
