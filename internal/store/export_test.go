package store

// LockEnvironmentsPG is PostgreSQL's statement of LockEnvironments, for
// the test of its plan.
const LockEnvironmentsPG = lockEnvironmentsPG
