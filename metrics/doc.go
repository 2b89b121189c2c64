// Package metrics exposes rstwatch's counters to Prometheus.
package metrics

import _ "github.com/prometheus/client_golang/prometheus"
