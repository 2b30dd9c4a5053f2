package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/router"
)

// poolCollector reads pool state at scrape time, so the hot path updates
// no metric for it.
type poolCollector struct {
	r                          *router.Router
	open, idle, inUse          *prometheus.Desc
	pipelined, pipelinedServed *prometheus.Desc
}

func newPoolCollector(r *router.Router) *poolCollector {
	labels := []string{"backend", "database", "user"}
	return &poolCollector{
		r:     r,
		open:  prometheus.NewDesc("shardproxy_pool_server_connections", "Open server connections per pool.", labels, nil),
		idle:  prometheus.NewDesc("shardproxy_pool_idle_server_connections", "Idle server connections per pool.", labels, nil),
		inUse: prometheus.NewDesc("shardproxy_pool_active_server_connections", "Server connections in use per pool.", labels, nil),
		pipelined: prometheus.NewDesc("shardproxy_pool_pipelined_server_connections",
			"Server connections per pool carrying pipelined requests (pool.pipeline_connections), counted as active too.", labels, nil),
		pipelinedServed: prometheus.NewDesc("shardproxy_pool_pipelined_requests_total",
			"Requests per pool sent down a pipelined server connection.", labels, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.idle
	ch <- c.inUse
	ch <- c.pipelined
	ch <- c.pipelinedServed
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.r.Pools() {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(p.Open), p.Addr, p.Database, p.User)
		ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(p.Idle), p.Addr, p.Database, p.User)
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(p.InUse), p.Addr, p.Database, p.User)
		ch <- prometheus.MustNewConstMetric(c.pipelined, prometheus.GaugeValue, float64(p.Pipelined), p.Addr, p.Database, p.User)
		ch <- prometheus.MustNewConstMetric(c.pipelinedServed, prometheus.CounterValue, float64(p.PipelinedRequests), p.Addr, p.Database, p.User)
	}
}
