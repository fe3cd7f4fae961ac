package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/glenv/glenv/internal/gitlabapi"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// TestSearchInSQLIsGitLabsSearch holds the SQL of ProjectEnvQuery.Prefix to
// gitlabapi.SearchMatches, GitLab's EnvironmentsFinder#by_search, on names
// with and without folders and with the characters branch names carry.
func TestSearchInSQLIsGitLabsSearch(t *testing.T) {
	names := []string{"review/feature-1", "review/Feature-2", "review/a/feature", "review//feature", "feature-x",
		"my-feature", "ab/ba-x", "fix+plus/feature", "v1.2_rc/feat%x", "main", "Review/Upper"}
	searches := []string{"feature", "FEAT", "review/", "a/feat", "ba", "feat%", "feat_", "upper", "main", "x"}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := integ("app")
		if err := store.CreateIntegration(ctx, s.DB, in); err != nil {
			t.Fatal(err)
		}
		for i, name := range names {
			e := &store.Environment{IntegrationID: in.ID, IntegrationName: "app", ProjectID: 42, Name: name,
				Slug: fmt.Sprintf("s%d", i), Host: fmt.Sprintf("s%d--app", i), Kind: "branch", State: store.StateActive}
			if err := store.SaveEnvironment(ctx, s.DB, e); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range searches {
			var want []string
			for _, n := range names {
				if gitlabapi.SearchMatches(n, q) {
					want = append(want, n)
				}
			}
			envs, err := store.PageProjectEnvironments(ctx, s.Reader(), store.ProjectEnvQuery{IntegrationIDs: []int64{in.ID}, Prefix: q}, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range envs {
				got = append(got, e.Name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("search %q: %q, want GitLab's %q", q, got, want)
			}
		}
	})
}
