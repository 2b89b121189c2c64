package churn

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := `Running 4s test @ http://127.0.0.1:18999/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.72ms    1.11ms  14.32ms   84.81%
    Req/Sec     8.50k   558.77     9.10k    85.00%
  33989 requests in 4.00s, 2.30MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   8497.65
Transfer/sec:    589.47KB
`
	r, err := ParseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 33989 || r.Elapsed != 4*time.Second || r.Errors != 7 {
		t.Fatalf("parsed %+v", r)
	}
	if rate := r.Rate(); rate < 8497 || rate > 8498 {
		t.Fatalf("rate %f", rate)
	}
	if _, err := ParseWrk("wrk: connection refused\n"); err == nil {
		t.Fatal("no request count accepted")
	}
	r, err = ParseWrk("  120 requests in 999.50ms, 8.00KB read\n")
	if err != nil || r.Elapsed != 999500*time.Microsecond || r.Errors != 0 {
		t.Fatalf("ms: %+v %v", r, err)
	}
}
