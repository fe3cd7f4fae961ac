package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
)

func TestUpkeepIsDueWhenGitsGcAutoWouldAct(t *testing.T) {
	for _, c := range []struct {
		name           string
		packs, loose17 int
		want           bool
	}{
		{"a fresh repository needs none", 0, 0, false},
		{"fifty packs are gc.autoPackLimit, not over it", 50, 0, false},
		{"more packs than gc.autoPackLimit are repacked", 51, 0, true},
		{"27 loose objects in objects/17 are gc.auto's share, not over it", 0, 27, false},
		{"more loose objects than gc.auto's share are packed", 0, 28, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := upkeepDue(c.packs, c.loose17); got != c.want {
				t.Fatalf("upkeepDue(%d, %d) = %v, want %v", c.packs, c.loose17, got, c.want)
			}
		})
	}
}

func TestUpkeepCountsPacksNotKeptAndLooseObjects(t *testing.T) {
	repo := t.TempDir()
	pack := filepath.Join(repo, "objects", "pack")
	loose := filepath.Join(repo, "objects", "17")
	for _, d := range []string{pack, loose} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"pack-a.pack", "pack-a.idx", "pack-b.pack", "pack-b.idx", "pack-b.keep", "pack-c.pack", "tmp_pack_x",
		"../17/" + strings.Repeat("ab", 19), "../17/" + strings.Repeat("c", 38), "../17/tmp_obj_x"} {
		if err := os.WriteFile(filepath.Join(pack, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if packs, loose17 := upkeepCounts(repo); packs != 2 || loose17 != 2 {
		t.Fatalf("counted %d packs and %d loose objects, want 2 (a kept pack is not repacked) and 2", packs, loose17)
	}
}

// A deploy's fetch runs no git process for the repository's upkeep until
// gc would act (one pack per fetch is far from the limit); once it would,
// git repacks.
func TestGitUpkeepRunsOnlyWhenItIsDue(t *testing.T) {
	w := newFetchWorld(t, nil)
	sha := w.gl.Commit(t, w.id, gitlabtest.Commit{Files: map[string]string{"a.txt": "a"}})
	repo, _, _ := w.fetch(t, sha)
	// git, recording each run.
	calls := filepath.Join(t.TempDir(), "calls")
	git := filepath.Join(t.TempDir(), "git")
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\nexec " + w.r.gitBin + " \"$@\"\n"
	if err := os.WriteFile(git, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w.r.gitBin = git
	w.r.maintain(repo)
	if b, err := os.ReadFile(calls); err == nil {
		t.Fatalf("git ran for the upkeep of a repository with one pack: %s", b)
	}
	// 51 packs: copies of the fetched one under other names.
	packs, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "pack-*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs after one fetch: %v", packs)
	}
	base := strings.TrimSuffix(packs[0], ".pack")
	for i := range gcAutoPackLimit {
		for _, ext := range []string{".pack", ".idx"} {
			b, err := os.ReadFile(base + ext)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(repo, "objects", "pack", "pack-"+strings.Repeat("0", 38)+string(rune('a'+i/26))+string(rune('a'+i%26))+ext)
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.r.maintain(repo)
	if b, err := os.ReadFile(calls); err != nil || !strings.Contains(string(b), "maintenance run --auto") {
		t.Fatalf("git's upkeep did not run with %d packs: %s %v", gcAutoPackLimit+1, b, err)
	}
	if packs, _ := upkeepCounts(repo); packs != 1 {
		t.Fatalf("git's upkeep left %d packs, want 1", packs)
	}
}
