// Package reconcile sets what the kernel counted against what rstwatch
// traced: the TCP stack's own per-namespace counters of resets sent (Tcp:
// OutRsts) and of connections it aborted (TcpExt: TCPAbortOn*), read from
// each network namespace's /proc/net/snmp and netstat, next to the resets
// traced there. A difference is a reset rstwatch did not see (lost, skipped
// by the kernel, filtered) or one the kernel counts that has no tracepoint.
// Resets that the TCP stack did not make (a firewall's, a forged one) are in
// neither: they show as received resets no local send explains, or, with
// the packet-level view, as sends by another sender.
package reconcile

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Counters are one namespace's TCP reset counters.
type Counters struct {
	// OutRsts is Tcp: OutRsts, segments with RST the TCP stack sent.
	OutRsts uint64 `json:"out_rsts"`
	// The TcpExt aborts: connections the kernel reset (or, on timeout,
	// dropped) for a reason of its own.
	AbortOnData    uint64 `json:"abort_on_data"`
	AbortOnClose   uint64 `json:"abort_on_close"`
	AbortOnMemory  uint64 `json:"abort_on_memory"`
	AbortOnTimeout uint64 `json:"abort_on_timeout"`
	AbortOnLinger  uint64 `json:"abort_on_linger"`
}

// Sub returns c - o field by field (counters only grow within a namespace).
func (c Counters) Sub(o Counters) Counters {
	return Counters{
		OutRsts:        c.OutRsts - o.OutRsts,
		AbortOnData:    c.AbortOnData - o.AbortOnData,
		AbortOnClose:   c.AbortOnClose - o.AbortOnClose,
		AbortOnMemory:  c.AbortOnMemory - o.AbortOnMemory,
		AbortOnTimeout: c.AbortOnTimeout - o.AbortOnTimeout,
		AbortOnLinger:  c.AbortOnLinger - o.AbortOnLinger,
	}
}

// Add returns c + o.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		OutRsts:        c.OutRsts + o.OutRsts,
		AbortOnData:    c.AbortOnData + o.AbortOnData,
		AbortOnClose:   c.AbortOnClose + o.AbortOnClose,
		AbortOnMemory:  c.AbortOnMemory + o.AbortOnMemory,
		AbortOnTimeout: c.AbortOnTimeout + o.AbortOnTimeout,
		AbortOnLinger:  c.AbortOnLinger + o.AbortOnLinger,
	}
}

// Aborts lists the TcpExt aborts by their metric label.
func (c Counters) Aborts() []struct {
	Name  string
	Value uint64
} {
	return []struct {
		Name  string
		Value uint64
	}{
		{"on_data", c.AbortOnData}, {"on_close", c.AbortOnClose}, {"on_memory", c.AbortOnMemory},
		{"on_timeout", c.AbortOnTimeout}, {"on_linger", c.AbortOnLinger},
	}
}

// Parse reads the counters from the contents of /proc/net/snmp and
// /proc/net/netstat. Both list a header line of names then a line of
// values per protocol ("Tcp: … OutRsts …" / "Tcp: … 128850 …").
func Parse(snmp, netstat []byte) (Counters, error) {
	var c Counters
	tcp, err := table(snmp, "Tcp")
	if err != nil {
		return c, fmt.Errorf("snmp: %w", err)
	}
	ext, err := table(netstat, "TcpExt")
	if err != nil {
		return c, fmt.Errorf("netstat: %w", err)
	}
	var ok bool
	if c.OutRsts, ok = tcp["OutRsts"]; !ok {
		return c, fmt.Errorf("snmp: no Tcp OutRsts")
	}
	// The aborts exist on every kernel since 2.6; a missing one reads 0.
	c.AbortOnData = ext["TCPAbortOnData"]
	c.AbortOnClose = ext["TCPAbortOnClose"]
	c.AbortOnMemory = ext["TCPAbortOnMemory"]
	c.AbortOnTimeout = ext["TCPAbortOnTimeout"]
	c.AbortOnLinger = ext["TCPAbortOnLinger"]
	return c, nil
}

func table(b []byte, proto string) (map[string]uint64, error) {
	prefix := proto + ":"
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 8<<10), 256<<10)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if names == nil {
			names = fields
			continue
		}
		if len(fields) != len(names) {
			return nil, fmt.Errorf("%s: %d names but %d values", proto, len(names), len(fields))
		}
		out := make(map[string]uint64, len(names))
		for i, n := range names {
			// Tcp MaxConn is -1: signed counters are not ours.
			if v, err := strconv.ParseUint(fields[i], 10, 64); err == nil {
				out[n] = v
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no %s lines", proto)
}
