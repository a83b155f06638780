// Package bench is lunferry's lab bench (`make bench`): it boots the lab VM
// once and measures, side by side in that one boot, what a migration costs
// against the limit or the alternative: hydration against a raw dd copy,
// host I/O through lunferry's export against a hand-built pass-through and
// the array itself, host I/O and latency during hydration, finalize's hold,
// throttle accuracy, many volumes on one proxy and the dm-era layer's
// overhead on host writes. Absolute figures are emulated and meaningless;
// each figure is a ratio of two measurements made in the same run,
// interleaved (A B A B ...) and repeated, reported as the median with its
// min–max.
//
// The host side (RunLab) boots the VM and writes results.json, results.md
// and PNG plots; the guest side (Guest) measures and prints one line per
// figure. A smoke mode of the same harness (tiny sizes, one or two
// repetitions) runs in `make test` as TestBenchSmoke.
package bench
