// Package clone keeps the background hydration of dm-clone devices at a
// throttle, and verifies the copy.
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
// A Controller turns samples of a device's status (dm.CloneStatus) into
// the messages (dm.MsgEnableHydration, dm.MsgHydrationThreshold, ...) that
// hold a target rate in bytes per second, and says when it wants the next
// sample. It is a pure decision: it reads no device and no clock.
//   - a token bucket (two seconds of the target deep) accrues the target
//     and is spent by every hydrated region, so no span of a few seconds
//     runs far above the target and debt is paid back;
//   - the concurrency (threshold) is chosen from the measured speed per
//     region in flight so that the device runs about 25% above the target,
//     and the on/off duty cycle trims the rest; on a device so fast that one
//     region in flight overshoots, hydration is turned on in bursts as short
//     as 10 ms;
//   - Unlimited uses the tuned settings (TunedFor), never the kernel's
//     defaults, which are many times slower;
//   - Paused (a rate of 0) disables hydration and keeps it off.
//
// A Regulator is what lunferry uses (plan.Run's loop): one Controller per
// volume, optionally under a Budget. The caller reads the status, calls
//
//	msgs := r.Regulate(volume, st, time.Now(), rate)
//
// sends msgs with dm.Client.Message, and samples again at r.Wake(volume)
// or at its next round, whichever comes first. Bursts of hydration last
// 10-100 ms on a device far faster than the target, so a caller that only
// samples on its rounds lets each burst run at full speed until the next
// round. Forget drops a volume that is paused, hydrated or aborted.
//
// # Throttle schedules and budgets
//
// A Schedule gives the rate by time of the week ("mon-fri
// 08:00-18:00=50MiB/s; *=unlimited", see ParseSchedule); a Budget splits one
// total rate max-min fairly among the volumes of a Regulator, handing what
// paused, finished or device-limited volumes cannot use to the others.
//
// # Verify
//
// Verify compares two block devices (the host-visible device and the new
// LUN, or the new LUN and the old) over given extents, chunk by chunk with
// O_DIRECT reads paced to a rate, and reports the differing ranges in a
// VerifyResult and a *MismatchError; Compare does the same over any two
// io.ReaderAt.
//
// Everything is tested without root against a simulated device;
// the kernel tests (*_kernel_test.go) drive real dm-clone devices in the
// lab VM.
package clone
