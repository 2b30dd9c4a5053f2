package health

// Metrics are read from the last snapshot at scrape time, so neither the
// polling loop nor the router's hot path updates a Prometheus metric.

import "github.com/prometheus/client_golang/prometheus"

type collector struct {
	m              *Monitor
	lag, up, total *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// Collector returns the monitor's metrics:
// shardproxy_backend_lag_bytes{shard,addr} (replicas whose lag is known),
// shardproxy_backend_up{shard,addr,role} (1 when the last poll succeeded
// and the router has not marked it down since) and
// shardproxy_backend_queries_total{shard,addr,role} (reads counted by
// Begin).
func (m *Monitor) Collector() prometheus.Collector {
	return &collector{
		m:     m,
		lag:   prometheus.NewDesc("shardproxy_backend_lag_bytes", "Bytes of WAL a replica's replay position is behind its primary's current position.", []string{"shard", "addr"}, nil),
		up:    prometheus.NewDesc("shardproxy_backend_up", "Whether the backend answered its last health poll (1) or not (0).", []string{"shard", "addr", "role"}, nil),
		total: prometheus.NewDesc("shardproxy_backend_queries_total", "Reads routed to the backend.", []string{"shard", "addr", "role"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.up
	ch <- c.total
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.m.Backends() {
		if st.Role == RoleReplica && st.LagBytes >= 0 {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(st.LagBytes), st.Shard, st.Addr)
		}
		up := 0.0
		switch st.State {
		case StateUp, StateLagging, StatePromoted:
			up = 1
		}
		role := string(st.Role)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, st.Shard, st.Addr, role)
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(st.Queries), st.Shard, st.Addr, role)
	}
}
