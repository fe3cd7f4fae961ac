package runtime

import (
	"os"
	"path/filepath"
	"strings"
)

// A cache repository grows by one pack per fetch made in process (and by
// loose objects when git fetched a small pack itself). git's automatic
// upkeep (`git maintenance run --auto`, whose only default task is
// `gc --auto`) does nothing until there are too many of either; running
// it after every fetch cost a git process per deploy, started while the
// new app was starting. So glenv counts them itself, as gc --auto does
// (git's builtin/gc.c: too_many_packs, too_many_loose_objects), and runs
// git only when gc would act.

// git's defaults (builtin/gc.c): gc.auto and gc.autoPackLimit. glenv's
// cache repositories have no configuration of their own.
const (
	gcAutoThreshold = 6700
	gcAutoPackLimit = 50
)

// upkeepDue reports whether git's gc --auto would repack a repository
// with packs packs (not kept) and loose loose objects in objects/17: more
// packs than gc.autoPackLimit, or more loose objects in that directory
// than gc.auto spread over the 256 fan-out directories (rounded up), the
// sample gc itself takes.
func upkeepDue(packs, loose17 int) bool {
	return packs > gcAutoPackLimit || loose17 > (gcAutoThreshold+255)/256
}

// upkeepCounts counts a repository's packs without a .keep file and its
// loose objects in objects/17; what cannot be read counts as nothing.
func upkeepCounts(repo string) (packs, loose17 int) {
	objects := filepath.Join(repo, "objects")
	if es, err := os.ReadDir(filepath.Join(objects, "pack")); err == nil {
		kept := map[string]bool{}
		for _, e := range es {
			if base, ok := strings.CutSuffix(e.Name(), ".keep"); ok {
				kept[base] = true
			}
		}
		for _, e := range es {
			if base, ok := strings.CutSuffix(e.Name(), ".pack"); ok && !kept[base] {
				packs++
			}
		}
	}
	if es, err := os.ReadDir(filepath.Join(objects, "17")); err == nil {
		for _, e := range es {
			// A loose object's file is named by the 38 hex digits after
			// its first two (SHA-1; 62 for SHA-256).
			if n := len(e.Name()); (n == 38 || n == 62) && isHexName(e.Name()) {
				loose17++
			}
		}
	}
	return packs, loose17
}

func isHexName(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
