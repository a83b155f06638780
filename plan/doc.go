// Package plan runs a volume's migration from an old array to a new one as a
// persisted state machine. It is the product's brain and makes no system
// call itself: the kernel is reached only through small ports (ports.go),
// with real adapters over the dm, lio, initiator and clone packages and
// printers for dry runs in plan/kernel, and an in-memory fake for tests in
// plan/plantest. The README's Architecture section has a picture of the
// packages, the steps and run's loop.
//
// Which command runs from which step, what it says otherwise and what
// status and restore make of each step are in one table (table.go); every
// command runs through one guarded runner (step.go) and its body, one file
// per command, says only what that command does. Each kind of kernel
// object is created, rebuilt and removed in one place (objects.go); undo is
// the recorded objects in reverse.
//
// # Workflow
//
// Every step is idempotent, persisted and has an abort path:
//
//  1. prepare (before the window; the host stays on the old array): refuse
//     old and new naming the same LUN of the same target (through any
//     portal) or disks with the same WWID; log in
//     to the new LUN, check it is at least as large as the old one (the
//     old size comes from old.sizeBytes or from attaching the old LUN
//     read-only), create the dm-clone metadata device: a file
//     <state-dir>/metadata/<volume>.meta on a loop device, sized by
//     MetadataBytes and allocated in full (a full disk fails here, not
//     mid-hydration), first 4 KiB zeroed (or a given device, zeroed the same
//     way). Nothing is ever written to the old LUN.
//  2. cutover (in the window): pre-cutover hooks (quiesce the host, map the
//     old LUN to the proxy), attach the old LUN and set its disk read-only,
//     create dm device "lunferry-<volume>" as
//     "0 <old sectors> clone <metadata> <new> <old> <region> 1 no_hydration",
//     discard on it the whole regions a thin old LUN reports unmapped
//     (marked hydrated, not copied; thin.go says when that is safe),
//     export it through LIO (iblock storage object "lunferry-<volume>",
//     TPG 1, LUN 0, an ACL for the host's IQN only), post-cutover hooks
//     (the host logs in), then wait for the host's session. The volume
//     records the time the tool itself spent in the window (Window.Tool),
//     hooks and session wait apart.
//  3. start / run: background hydration. dm-clone has no rate limit: the
//     Regulator (clone.Regulator: a controller per volume under an optional
//     shared budget) reaches the throttle's rate with hydration_threshold,
//     hydration_batch_size and enable/disable messages from measured
//     progress. `lunferry run` ticks every volume (Tick); progress, rate and
//     ETA are saved; pause/resume and throttle changes apply at once or at
//     the next tick.
//  4. finalize (hydration complete, else ErrNotReady): pre-finalize hooks,
//     live swap of the table to "0 <sectors> linear <new> 0" (suspend, load,
//     resume: the host keeps its session, size unchanged), log out of the
//     old LUN, detach and delete the metadata, post-finalize hooks. The
//     export stays: the host keeps using the proxy until it is re-pointed
//     to the new array directly (handover). A clone device always shows the host a
//     write-back cache with FUA; when the new LUN is write-through, its
//     proxy-side disk is switched to "temporary write back" before the swap
//     so that the device keeps that cache and LIO keeps accepting the
//     host's FUA writes (see initiator.KeepWriteBack).
//  5. handover (optional, after finalize; Handover): the host goes straight
//     to the new array and the proxy is retired. Pre-handover hooks move
//     the host (on the new array, map the new LUN to the host's IQN; on the
//     host, log out of the proxy and log in to the new array); while an
//     initiator still has a session on the export, handover stops with a
//     HostSessionError (ErrNotReady) naming the host, and the next attempt
//     runs the pre-handover hooks again (force tears the export down under
//     the host). Then the export, the linear device and the proxy's session
//     to the new LUN (kept while another volume uses it) are removed,
//     post-handover hooks run, and the volume is handed over: final, the
//     proxy holds nothing of it and `lunferry volume remove` forgets it.
//     Once the host has left (HostMovedAt), restore no longer rebuilds the
//     proxy's objects; a rerun finishes the removal.
//  6. abort (any step before the swap): pre-abort hooks (stop the host, log
//     it out), then the export, the device, the old session, the metadata
//     and the new session are removed in reverse order of creation; the old
//     LUN is as it was. The report says plainly that writes the host made
//     after cutover exist only on the new LUN.
//     After a rollback the old LUN holds every write: the report says so.
//     Rollback (after cutover, before handover; rollback.go): hydration
//     stops (after finalize: pre-rollback hooks, the old LUN attached
//     again, checked and fenced), the blocks the host wrote since cutover (the era layer's
//     record) are copied from the host's view to the old LUN in rounds
//     until a round is small, then the device below the era layer is
//     suspended, the rest copied from the new LUN and the device swapped
//     live to "0 <sectors> linear <old> 0". The only writes lunferry ever
//     makes to the old LUN are this copy's (OldWriter) and, once rolled
//     back, the host's own through the proxy.
//  7. restore (after a reboot or crash): every object of every volume's
//     undo stack is rebuilt in creation order, looked up first. The clone
//     is recreated over the same metadata file, never zeroed, so hydration
//     continues where it stopped; hydration is re-enabled under the
//     throttle. Interrupted steps are reported, not guessed: rerun the
//     step to resume it, or abort it.
//  8. status: step, progress, rate, ETA, throttle, host sessions, window
//     time, what serves the host (old array, proxy, new array) and the
//     next command, plus kernel objects with lunferry's name no state
//     knows.
//
// # Persistence
//
// One JSON file per volume, <state-dir>/volumes/<name>.json, with a
// "version" field; written atomically (temp file, fsync, rename, fsync of
// the directory). A file that does not parse (ErrStateCorrupt) or comes
// from a newer lunferry (ErrStateVersion) stops every command that reads
// it, and nothing is changed. Each step saves its "-ing" step before it
// touches the kernel and its "-ed" step after; each kernel object is pushed
// on the volume's undo stack (Objects, Pending) before it is created and
// marked done after. A device-mapper device named "lunferry-<volume>" or a
// LIO target with a volume's export IQN that the state does not record is
// refused (ErrUnknownObject): lunferry neither adopts nor deletes it.
//
// One lock per state directory: an exclusive flock on <state-dir>/lock,
// with the holder's pid in the file. A second lunferry waits
// Options.LockWait, then fails with ErrLocked naming the pid. The control
// loop takes the lock for each round only, and skips a round while another
// command holds it.
//
// # Runbook
//
// `lunferry volume add --runbook FILE` reads {"volumes": [Spec, ...]}. The
// fields of a Spec (unknown fields are errors):
//
//	name            1-32 of a-z 0-9 -; kernel objects are lunferry-<name>
//	old, new        {"portal": "ip[:port]", "iqn": "...", "lun": N,
//	                 "sizeBytes": "100GiB" (optional; old: checked at cutover),
//	                 "chap": {"username", "secretFile", "mutualUsername",
//	                          "mutualSecretFile"} (the session's; files, never secrets),
//	                 "discoveryChap": {same} (SendTargets discovery only; default none)}
//	hostIQN         the application host's initiator name (only one admitted)
//	export          {"iqn": "...", "portals": ["ip:port", ...],
//	                 "chap": {same} (what the host presents; mutual: what the proxy presents),
//	                 "allowWildcardPortal": true (needed to listen on 0.0.0.0 or [::])}
//	regionSectors   dm-clone region, power of two 8..2097152 (default 128)
//	metadata        {"device": "/dev/..."} (default: loop file in the state dir)
//	throttle        "50MiB/s" or "mon-fri 08:00-18:00=50MiB/s; *=200MiB/s"
//	hooks           {"preCutover", "postCutover", "preFinalize",
//	                 "postFinalize", "preAbort", "postAbort",
//	                 "preHandover", "postHandover", "preRollback": [paths],
//	                 "timeout": "5m"}
//	sessionTimeout  wait for the host's session at cutover (default "2m")
//	thin            "copy": copy every region, also those a thin old LUN
//	                reports unmapped (default: skip them where safe, thin.go)
//
// Hooks run without a shell, with only PATH, LANG and the environment
// documented in hooks.go (LUNFERRY_VOLUME, LUNFERRY_PHASE,
// LUNFERRY_EXPORT_IQN, LUNFERRY_EXPORT_PORTAL, LUNFERRY_HOST_IQN,
// LUNFERRY_OLD_*, LUNFERRY_NEW_*, ...), killed with their process group
// after the timeout; their output is appended to
// <state-dir>/logs/<volume>.<phase>.log. Hooks must be owned by root and
// not writable by group or others; secret files owned by root with mode
// 0600 (or 0400). Prepare and cutover check both before the window.
package plan
