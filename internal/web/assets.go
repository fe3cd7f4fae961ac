package web

import (
	"io/fs"
	"net/http"
)

// assets serves the embedded JavaScript and CSS under /assets/. They change
// only with the binary, so browsers may keep them for an hour.
func assets() http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "public, max-age=3600")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(rw, r)
	})
}

// AssetsSize is the total size of the JavaScript and CSS the dashboard
// ships, in bytes (the budget is 100 KB).
func AssetsSize() (int, error) {
	total := 0
	err := fs.WalkDir(assetFS, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(path)
		total += len(b)
		return err
	})
	return total, err
}
