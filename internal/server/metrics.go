package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glenv/glenv/internal/store"
)

// storeCollector reports counts read from the database at scrape time.
type storeCollector struct {
	st   *store.Store
	envs *prometheus.Desc
	dels *prometheus.Desc
}

func newStoreCollector(st *store.Store) *storeCollector {
	return &storeCollector{st: st,
		envs: prometheus.NewDesc("glenv_environments", "Environments by state.", []string{"state"}, nil),
		dels: prometheus.NewDesc("glenv_deliveries", "Stored webhook deliveries by status.", []string{"status"}, nil)}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.envs; ch <- c.dels }

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if by, err := store.CountEnvironmentsByState(ctx, c.st.Reader()); err == nil {
		for state, n := range by {
			ch <- prometheus.MustNewConstMetric(c.envs, prometheus.GaugeValue, float64(n), state)
		}
	}
	for _, status := range []string{store.DeliveryAccepted, store.DeliveryDuplicate, store.DeliveryProcessed, store.DeliveryFailed} {
		if n, err := store.CountDeliveries(ctx, c.st.Reader(), status); err == nil {
			ch <- prometheus.MustNewConstMetric(c.dels, prometheus.GaugeValue, float64(n), status)
		}
	}
}
