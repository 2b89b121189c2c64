package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstwatch/rstwatch/zk/diagnose"
)

var (
	descZKInfo = prometheus.NewDesc("rstwatch_zk_server_info",
		"1 for each probed ZooKeeper server, with its version (\"3.4.6\") and mode as it reported them (empty while unknown or unreachable).", []string{"endpoint", "version", "mode"}, nil)
	descZKUp = prometheus.NewDesc("rstwatch_zk_server_up",
		"1 when the last probe of the ZooKeeper server succeeded, else 0.", []string{"endpoint"}, nil)
	descZKErrors = prometheus.NewDesc("rstwatch_zk_probe_errors_total",
		"Failed probes of each ZooKeeper server.", []string{"endpoint"}, nil)
)

// collectZK exports what the prober knows. Endpoints are bounded by the
// same cap as the zk_endpoint label (in sorted order, so the set is stable
// between scrapes); the prober itself bounds what it learns.
func (c *Collector) collectZK(ch chan<- prometheus.Metric) {
	if c.o.ZK == nil {
		return
	}
	max := c.resets.limits.ZKEndpoints
	infos := c.o.ZK.Servers()
	if len(infos) > max {
		infos = infos[:max]
	}
	for _, si := range infos {
		// The short form: the raw line carries a build id and date that
		// would make a new series for the same release.
		version := diagnose.ShortVersion(si.Version)
		ch <- prometheus.MustNewConstMetric(descZKInfo, prometheus.GaugeValue, 1, si.Endpoint, version, si.Mode)
		up := 0.0
		if si.Err == "" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descZKUp, prometheus.GaugeValue, up, si.Endpoint)
	}
	errs := c.o.ZK.ErrorCounts()
	eps := make([]string, 0, len(errs))
	for ep := range errs {
		eps = append(eps, ep)
	}
	slices.Sort(eps)
	if len(eps) > max {
		eps = eps[:max]
	}
	for _, ep := range eps {
		ch <- prometheus.MustNewConstMetric(descZKErrors, prometheus.CounterValue, float64(errs[ep]), ep)
	}
}
