package runtime

// Supervisors is how many goroutines supervise an app of r right now: a
// test's way to see that Remove and redeploys leave none behind.
func Supervisors(r *Runtime) int { return int(r.supervisors.Load()) }

// HasCgroups reports whether r limits commands with cgroups.
func HasCgroups(r *Runtime) bool { return r.sb.cg != nil }

// PruneBuilds prunes r's builds now and says why it pruned nothing.
func PruneBuilds(r *Runtime) error { return r.prune() }

// EnvCgroupDirs are the cgroup directories of the environment with envID
// (v1: one per controller: memory, pids, cpu); nil without cgroups.
func EnvCgroupDirs(r *Runtime, envID int64) []string {
	if r.sb.cg == nil {
		return nil
	}
	return r.sb.cg.env(r.sb.uidFor(envID)).dirs
}

// CgroupV2 reports whether r's cgroups are v2.
func CgroupV2(r *Runtime) bool { return r.sb.cg != nil && r.sb.cg.v2 }

// Prestaged reports whether r's spare namespace holds a sandbox staged for
// the next deploy of the environment with envID (prestage.go).
func Prestaged(r *Runtime, envID int64) bool {
	r.spare.mu.Lock()
	defer r.spare.mu.Unlock()
	return r.spare.pre != nil && r.spare.pre.env == envID
}

// SetBeforeSwitch makes f run as a deploy of an environment of r is about
// to switch traffic to its new process.
func SetBeforeSwitch(r *Runtime, f func(envID int64)) { r.beforeSwitch = f }

// StageSpareNow makes r's spare namespace now and stages in it the next
// deploy's sandbox of the environment with envID from the app that runs,
// as a refill does once a deploy settled (prenet.go), and reports whether
// a sandbox was staged.
func StageSpareNow(r *Runtime, envID int64) bool {
	a := r.runningApp(envID)
	if a == nil {
		return false
	}
	ns, pre := r.newSpare(envID, a.job.uid)
	if ns == nil {
		return false
	}
	r.spare.mu.Lock()
	old, oldPre := r.spare.ns, r.spare.pre
	r.spare.ns, r.spare.pre = ns, pre
	r.spare.mu.Unlock()
	oldPre.discard()
	if old != nil {
		old.release()
	}
	return pre != nil
}
