package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// TestLockEnvironmentsReadsRowsByName: the rows of the names asked for,
// of that integration only, tombstones included, and none for a name
// without a row; on both databases (PostgreSQL's statement differs).
func TestLockEnvironmentsReadsRowsByName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		var envs []*store.Environment
		for _, k := range [][2]string{{"app", "main"}, {"app", "feature/x"}, {"app", "gone"}, {"other", "feature/x"}, {"app", "feature/y"}} {
			envs = append(envs, &store.Environment{IntegrationName: k[0], Name: k[1], Slug: k[1], Host: k[0] + "-" + k[1],
				Kind: "branch", Ref: k[1], State: "running", Tier: "development", SeenSHAs: []string{}})
		}
		if err := store.SaveEnvironments(ctx, db.DB, envs); err != nil {
			t.Fatal(err)
		}
		if _, err := db.DB.ExecContext(ctx, `UPDATE environments SET deleted_at = 1 WHERE name = 'gone'`); err != nil {
			t.Fatal(err)
		}
		tx, err := db.DB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		got, err := store.LockEnvironments(ctx, tx, db.Dialect, "app", []string{"feature/x", "gone", "missing", "main"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for n, e := range got {
			names = append(names, n)
			if e.IntegrationName != "app" || e.Name != n {
				t.Errorf("row %q is %s/%s", n, e.IntegrationName, e.Name)
			}
		}
		slices.Sort(names)
		if want := []string{"feature/x", "gone", "main"}; !slices.Equal(names, want) {
			t.Errorf("read %q, want %q", names, want)
		}
		if got["feature/x"].ID != envs[1].ID || got["gone"].DeletedAt.IsZero() {
			t.Errorf("feature/x has id %d (want %d); gone's tombstone %v", got["feature/x"].ID, envs[1].ID, got["gone"].DeletedAt)
		}
	})
}

// TestLockEnvironmentsProbesTheUniqueIndex: on PostgreSQL, before any
// statistics exist (a new database, a table that grew before autovacuum's
// first ANALYZE), the drain's lock of a batch's environments still looks
// each name up in the unique (integration_name, name) index. The IN-list
// form it replaced was planned as a scan of every environment of the
// integration there (environments_dashboard_integration), filtered by name.
func TestLockEnvironmentsProbesTheUniqueIndex(t *testing.T) {
	db := storetest.Open(t, storetest.Postgres(t))
	ctx := context.Background()
	// No ANALYZE may run while the table fills and is planned.
	if _, err := db.DB.ExecContext(ctx, `ALTER TABLE environments SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DB.ExecContext(ctx, `INSERT INTO environments (integration_name, project_id, name, slug, host, kind, ref, parent,
		head_sha, deployed_sha, state, tier, external_url, description, created_at, updated_at)
		SELECT 'app', 1, 'feature/' || i, 'f' || i, 'h' || i, 'branch', 'feature/' || i, 'main', '', '', 'running', 'development', '', '', 1, 1
		FROM generate_series(1, 5000) AS i`); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 32)
	for i := range names {
		names[i] = fmt.Sprintf("new/%02d", i) // the burst's new branches: no row yet
	}
	var plan string
	if err := db.DB.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+store.LockEnvironmentsPG, "app", names).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var top []struct{ Plan planNode }
	if err := json.Unmarshal([]byte(plan), &top); err != nil || len(top) != 1 {
		t.Fatalf("EXPLAIN's answer %q: %v", plan, err)
	}
	scans := top[0].Plan.scansOf("environments")
	if len(scans) != 1 || scans[0] != "Index Scan using environments_integration_name_name_key" {
		t.Errorf("environments are read by %q, want one index scan of environments_integration_name_name_key\nplan: %s", scans, plan)
	}
}

// planNode is a node of PostgreSQL's EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

// scansOf lists the scans of table under n, as "<node type> using <index>".
func (n planNode) scansOf(table string) []string {
	var out []string
	if n.RelationName == table || n.IndexName != "" && n.RelationName == "" {
		s := n.NodeType
		if n.IndexName != "" {
			s += " using " + n.IndexName
		}
		out = append(out, s)
	}
	for _, c := range n.Plans {
		out = append(out, c.scansOf(table)...)
	}
	return out
}
