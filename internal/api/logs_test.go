package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/api"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

const token = "glenv_api_test_token_0123456789"

func serve(t *testing.T, s *store.Store) *httptest.Server {
	t.Helper()
	if err := store.EnsureAPIToken(context.Background(), s.DB, "test", store.RoleAdmin, token); err != nil {
		t.Fatal(err)
	}
	a := &api.API{Store: s, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestActivityLogIsReadFromOffsets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		srv := serve(t, s)
		a := store.Activity{IntegrationName: "app", Kind: store.ActivityDeploy, State: store.ActivityRunning}
		if err := store.InsertActivity(ctx, s.DB, &a); err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{"fetch\n", "build\n"} {
			if _, err := store.AppendLog(ctx, s.DB, a.ID, l); err != nil {
				t.Fatal(err)
			}
		}
		path := "/api/v1/activities/" + strconv.FormatInt(a.ID, 10) + "/log"
		tests := []struct {
			name, query, body, next, state string
			code                           int
		}{
			{"no offset reads from the start", "", "fetch\nbuild\n", "12", "running", 200},
			{"an offset resumes there", "?offset=6", "build\n", "12", "running", 200},
			{"at the end: nothing yet, resume at the end", "?offset=12", "", "12", "running", 200},
			{"a negative offset is refused, naming it", "?offset=-1", "offset", "", "", 400},
			{"a non-number offset is refused, naming it", "?offset=x", "offset", "", "", 400},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := get(t, srv, path+tt.query)
				if resp.StatusCode != tt.code {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
				}
				if tt.code != 200 {
					if !strings.Contains(body, tt.body) {
						t.Fatalf("error %s does not name %q", body, tt.body)
					}
					return
				}
				if body != tt.body || resp.Header.Get(api.HeaderNextOffset) != tt.next || resp.Header.Get(api.HeaderActivityState) != tt.state {
					t.Fatalf("got %q next %q state %q; want %q %q %q", body, resp.Header.Get(api.HeaderNextOffset),
						resp.Header.Get(api.HeaderActivityState), tt.body, tt.next, tt.state)
				}
			})
		}
		if resp, _ := get(t, srv, "/api/v1/activities/999999/log"); resp.StatusCode != 404 {
			t.Fatalf("log of a missing activity: %d, want 404", resp.StatusCode)
		}
	})
}

func TestDeliveryViewsCarryNoBody(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		srv := serve(t, s)
		d := &store.Delivery{IntegrationName: "app", Event: "Push Hook", Headers: "{}", Body: `{"secret_looking":"payload"}`, Status: store.DeliveryAccepted}
		if _, err := store.InsertDelivery(ctx, s.DB, d); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/api/v1/deliveries", "/api/v1/deliveries/" + strconv.FormatInt(d.ID, 10)} {
			resp, body := get(t, srv, path)
			if resp.StatusCode != 200 || strings.Contains(body, "secret_looking") || !json.Valid([]byte(body)) {
				t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
			}
		}
	})
}
