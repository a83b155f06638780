//go:build !crashpoints

package crashpoint

// Enabled says whether this build has crash points: not the product build.
const Enabled = false

// Hit does nothing: the product build has no crash points.
func Hit(string) {}
