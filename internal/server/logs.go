package server

import (
	"crypto/hmac"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/glenv/glenv/internal/activitylog"
	"github.com/glenv/glenv/internal/store"
)

// logURL is the link GitLab shows for an activity's log (statuses, the MR
// note). People follow it from GitLab without a glenv API token, so it
// carries a signature over the activity id instead; it grants reading that
// one log and nothing else.
func (s *Server) logURL(activityID int64) string {
	return fmt.Sprintf("%s/logs/%d?sig=%s", s.cfg.PublicURL, activityID, s.box.MAC("log", strconv.FormatInt(activityID, 10)))
}

func (s *Server) publicLog(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	want := s.box.MAC("log", r.PathValue("id"))
	if err != nil || !hmac.Equal([]byte(r.URL.Query().Get("sig")), []byte(want)) {
		http.Error(w, "this log link is not valid: open the log from the GitLab status or merge request note", http.StatusNotFound)
		return
	}
	act, err := store.GetActivity(r.Context(), s.store.Reader(), id)
	if err != nil {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Anyone with the link reads this: no host path, whatever wrote the log.
	fmt.Fprintf(w, "%s %s of %s/%s at %s: %s %s\n\n", act.Kind, strconv.FormatInt(act.ID, 10), act.IntegrationName, act.EnvironmentName, act.SHA, act.State, s.paths.Text(act.Result))
	// Page by page: a log is never held in memory whole (it is bounded by
	// --activity-log-max-size, plus what is written while this reads).
	var offset int64
	for {
		part, err := activitylog.Read(r.Context(), s.store.Reader(), id, offset)
		if err != nil {
			fmt.Fprintf(w, "\n[… the rest of this log could not be read: %v]\n", s.paths.Error(err))
			return
		}
		if part.Text == "" {
			return
		}
		if _, err := io.WriteString(w, s.paths.Text(part.Text)); err != nil {
			return // the reader went away
		}
		offset = part.Next
	}
}
