package envapi

import (
	"net/http"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// routeTable lists the endpoints in Grape's declaration order: the first
// route whose path and method match wins, so the literal stop_stale and
// review_apps come before :environment_id.
func (h *handler) routeTable() gitlabapi.Router[func(*request)] {
	var rt gitlabapi.Router[func(*request)]
	rt.Handle(http.MethodGet, "projects/:id/environments", h.list)
	rt.Handle(http.MethodPost, "projects/:id/environments", h.create)
	rt.Handle(http.MethodPost, "projects/:id/environments/stop_stale", h.stopStale)
	rt.Handle(http.MethodDelete, "projects/:id/environments/review_apps", h.deleteReviewApps)
	rt.Handle(http.MethodGet, "projects/:id/environments/:environment_id", h.get)
	rt.Handle(http.MethodPut, "projects/:id/environments/:environment_id", h.edit)
	rt.Handle(http.MethodDelete, "projects/:id/environments/:environment_id", h.delete)
	rt.Handle(http.MethodPost, "projects/:id/environments/:environment_id/stop", h.stop)
	return rt
}
