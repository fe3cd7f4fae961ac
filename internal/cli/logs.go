package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glenv/glenv/internal/api"
	"github.com/glenv/glenv/internal/store"
)

// followPoll is how often --follow asks for more of a log that has none yet.
var followPoll = 500 * time.Millisecond

// printActivityLog prints activity id's log page by page from offset 0, each
// page asked for from the offset the previous one ended at. Without follow
// it stops at the end of what is written; with follow it waits for more
// until the activity has finished (or the command is interrupted).
func printActivityLog(cmd *cobra.Command, c *client, id string, follow bool) error {
	var offset int64
	for {
		text, hdr, err := c.getText("/api/v1/activities/" + url.PathEscape(id) + "/log?offset=" + strconv.FormatInt(offset, 10))
		if err != nil {
			return err
		}
		if _, err := io.WriteString(cmd.OutOrStdout(), text); err != nil {
			return err
		}
		next, err := strconv.ParseInt(hdr.Get(api.HeaderNextOffset), 10, 64)
		if err != nil {
			// An older server answers the whole log whatever the offset.
			return fmt.Errorf("the server sent no %s: upgrade it to this glenv's version", api.HeaderNextOffset)
		}
		if text != "" && next > offset {
			offset = next
			continue // more may be waiting right now
		}
		offset = next
		if !follow || finished(hdr.Get(api.HeaderActivityState)) {
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return nil
		case <-time.After(followPoll):
		}
	}
}

// nextOffset is where to resume after a page of app output: the server's
// word, else (an older server, which read app output from offsets too) the
// bytes read.
func nextOffset(hdr http.Header, offset int64, page string) int64 {
	if n, err := strconv.ParseInt(hdr.Get(api.HeaderNextOffset), 10, 64); err == nil {
		return n
	}
	return offset + int64(len(page))
}

// finished reports whether an activity in state will write no more log.
func finished(state string) bool {
	switch state {
	case store.ActivityComplete, store.ActivityFailed, store.ActivityCancelled:
		return true
	}
	return false
}

// getText GETs a text answer with its headers.
func (c *client) getText(path string) (string, http.Header, error) {
	var text string
	var hdr http.Header
	err := c.doWith(http.MethodGet, path, nil, &text, &hdr)
	return text, hdr, err
}

// streamText GETs path and copies the answer to w as it arrives (an app's
// log followed on Kubernetes stays open while the pod runs), with no
// overall timeout: it ends with the answer or ctx.
func (c *client) streamText(ctx context.Context, path string, w io.Writer) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach the glenv server at %s: %v (is `glenv serve` running? see --server)", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return resp.Header, &apiError{status: resp.StatusCode, msg: msg, body: raw}
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return resp.Header, ctx.Err()
	}
	return resp.Header, err
}
