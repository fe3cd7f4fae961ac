package store

// LockEnvironmentsPG is PostgreSQL's statement of LockEnvironments, for
// the test of its plan.
const LockEnvironmentsPG = lockEnvironmentsPG

// SetPrepared sets what PrepareBody would have encoded for d on dialect.
func SetPrepared(d *Delivery, dialect Dialect, value any) {
	d.stored = preparedBody{dialect: dialect, body: d.Body, value: value}
}
