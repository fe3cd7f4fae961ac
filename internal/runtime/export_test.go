package runtime

// Supervisors is how many goroutines supervise an app of r right now: a
// test's way to see that Remove and redeploys leave none behind.
func Supervisors(r *Runtime) int { return int(r.supervisors.Load()) }

// HasCgroups reports whether r limits commands with cgroups.
func HasCgroups(r *Runtime) bool { return r.sb.cg != nil }
