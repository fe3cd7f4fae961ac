// Package gitsha holds the few facts about Git commit ids that several
// packages need (how they are shown, GitLab's "no commit" marker), so none
// of them imports the lifecycle or the runtime for a string helper. It is a
// leaf: it imports nothing of glenv.
package gitsha

// Short is the 8-character form of a SHA shown to people.
func Short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// IsZero reports GitLab's "no commit" marker (a ref created or deleted):
// 40 zeros, or 64 in SHA-256 repositories. An empty string is not the marker.
func IsZero(sha string) bool {
	if sha == "" {
		return false
	}
	for i := 0; i < len(sha); i++ {
		if sha[i] != '0' {
			return false
		}
	}
	return true
}
