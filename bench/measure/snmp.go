package measure

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ParseSNMP returns one counter (e.g. "Tcp", "OutRsts") from the contents
// of /proc/net/snmp, where each protocol has a header line of names
// followed by a line of values.
func ParseSNMP(data []byte, proto, name string) (uint64, error) {
	lines := strings.Split(string(data), "\n")
	prefix := proto + ":"
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], prefix) || !strings.HasPrefix(lines[i+1], prefix) {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if n == name && j < len(values) {
				v, err := strconv.ParseUint(values[j], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("/proc/net/snmp %s %s: %w", proto, name, err)
				}
				return v, nil
			}
		}
		break
	}
	return 0, fmt.Errorf("/proc/net/snmp: no %s %s", proto, name)
}

// TCPOutRsts is the kernel's count of resets sent in this network namespace:
// a cross-check of what the storm counted (other traffic adds to it).
func TCPOutRsts() (uint64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, fmt.Errorf("reading TCP counters: %w", err)
	}
	return ParseSNMP(b, "Tcp", "OutRsts")
}
