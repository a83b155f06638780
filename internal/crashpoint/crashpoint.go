// Package crashpoint marks the places where a test may kill lunferry: each
// kernel-action boundary of the state machine (plan) calls Hit with the
// boundary's name, such as "push:device" or "trying:cutting-over".
//
// In the product build Hit does nothing. A binary built with
// `go build -tags crashpoints` acts on its environment at each Hit:
//
//	LUNFERRY_CRASH_AT=push:device     SIGKILL itself at the first hit of push:device
//	LUNFERRY_CRASH_AT=pop:device#2    the same at its second hit
//	LUNFERRY_CRASH_WAIT=1             print Reached+name to stderr and block instead
//	                                  (a power cut test cuts the VM's power then)
//	LUNFERRY_CRASH_TRACE=FILE         append every hit's name to FILE, one a line
//	                                  (a dry pass lists a command's crash points)
//
// Only the lab's crash tests build with the tag (integration/e2e).
package crashpoint

// The environment variables a crashpoints build reads at each Hit.
const (
	// EnvAt names the crash point, "name" or "name#k" (the k-th hit of
	// name in this process).
	EnvAt = "LUNFERRY_CRASH_AT"
	// EnvWait, when not empty, makes the crash point print Reached and the
	// name to stderr and block forever instead of killing the process.
	EnvWait = "LUNFERRY_CRASH_WAIT"
	// EnvTrace names a file every hit's name is appended to.
	EnvTrace = "LUNFERRY_CRASH_TRACE"
)

// Reached starts the line a blocking crash point prints to stderr,
// followed by the point's name.
const Reached = "lunferry crashpoint reached: "
