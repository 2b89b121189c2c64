package measure

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// RstwatchSummary is the part of `rstwatch trace --output json`'s closing
// {"type":"summary"} line the bench reads.
type RstwatchSummary struct {
	Total uint64 `json:"total"`
	Lost  uint64 `json:"lost"`
	Seen  uint64 `json:"seen"`
}

var resetPrefix = []byte(`{"type":"reset"`)

// ScanRstwatchJSON counts the reset lines of rstwatch's JSON output and
// returns its summary, nil when the output has none (rstwatch killed).
func ScanRstwatchJSON(r io.Reader) (resets uint64, sum *RstwatchSummary, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, resetPrefix):
			resets++
		case bytes.HasPrefix(line, []byte(`{"type":"summary"`)):
			var s RstwatchSummary
			if err := json.Unmarshal(line, &s); err != nil {
				return resets, nil, fmt.Errorf("rstwatch summary line: %w", err)
			}
			sum = &s
		}
	}
	return resets, sum, sc.Err()
}

// MetricSum adds up every sample of one metric in Prometheus text format;
// false when there is none.
func MetricSum(text []byte, name string) (float64, bool) {
	var sum float64
	var found bool
	for line := range strings.SplitSeq(string(text), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found
}
