// Package clone drives the background hydration of a dm-clone device during
// a lunferry migration, and finishes it.
//
// # Rate control
//
// dm-clone has no rate limit of its own. Its only knobs are the messages
// enable_hydration / disable_hydration, hydration_threshold N (at most N
// regions being copied at once; the kernel counts a batch being assembled
// against it) and hydration_batch_size N (copy N contiguous regions per
// kcopyd request, so the effective copy size is min(batch, threshold)
// regions). It also idles background copying while host I/O is in flight
// (drivers/md/dm-clone-target.c, do_hydration).
//
// A Controller reaches a target rate in bytes per second from measured
// progress:
//   - a token bucket (depth Options.Burst seconds of the target) accrues the
//     target and is spent by every hydrated region, so no span of a few
//     seconds runs far above the target and debt is paid back;
//   - the concurrency (threshold) is chosen from the measured speed per
//     region in flight so that the device runs about 25% above the target,
//     and the on/off duty cycle trims the rest; on a device so fast that one
//     region in flight overshoots, hydration is turned on in bursts as short
//     as Options.MinOnTime;
//   - Unlimited uses the tuned settings (TunedFor), never the kernel's
//     defaults, which were 5-10x slower over iSCSI in the lab.
//
// Controller.Run owns its loop (Step, wait, repeat) and signals completion
// on Done; Regulator offers the same logic to a caller that owns the loop
// and the device (the plan's tick), returning the messages to send, and
// says through Wake when the next sample is due: bursts of hydration last
// 10-100 ms on a device far faster than the target, so the caller must
// sample between its ticks too (plan.Run does), or a burst runs at full
// speed until the next tick.
//
// # Throttle schedules and budgets
//
// A Schedule gives the rate by time of the week ("mon-fri
// 08:00-18:00=50MiB/s; *=unlimited", see ParseSchedule); a Budget splits one
// total rate max-min fairly among the volumes of a proxy, handing what
// paused, finished or device-limited volumes cannot use to the others.
//
// # Finalize and Verify
//
// Finalize swaps a fully hydrated clone live to a linear table over the new
// LUN (refusing with ErrNotHydrated before that); Verify compares two block
// devices chunk by chunk with O_DIRECT reads.
//
// The kernel sits behind the small Device and Swapper interfaces, so all
// the control logic is tested without root against a simulated device and a
// fake clock; DMDevice adapts them to a dm.Client. Kernel tests
// (*_kernel_test.go) run in the lab VM.
package clone
