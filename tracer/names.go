package tracer

import (
	"strings"

	"github.com/cilium/ebpf/btf"
)

// tcpStates are the kernel's TCP state numbers (include/net/tcp_states.h),
// which are part of the tracepoint ABI and have not changed since 2.6.
var tcpStates = [...]string{
	1:  "ESTABLISHED",
	2:  "SYN_SENT",
	3:  "SYN_RECV",
	4:  "FIN_WAIT1",
	5:  "FIN_WAIT2",
	6:  "TIME_WAIT",
	7:  "CLOSE",
	8:  "CLOSE_WAIT",
	9:  "LAST_ACK",
	10: "LISTEN",
	11: "CLOSING",
	12: "NEW_SYN_RECV",
}

func stateName(s uint8) string {
	if int(s) < len(tcpStates) {
		return tcpStates[s]
	}
	return ""
}

// reasonNames maps enum sk_rst_reason values to names. The enum's numbering
// is not stable across kernels, so the names are read from the running
// kernel's BTF rather than compiled in.
type reasonNames []string

const reasonUnknown = "UNKNOWN"

func (r reasonNames) name(v uint16) string {
	if int(v) < len(r) && r[v] != "" {
		return r[v]
	}
	return reasonUnknown
}

// kernelReasonNames reads enum sk_rst_reason from the kernel's BTF. It
// returns nil (every reason UNKNOWN) on kernels without the enum.
func kernelReasonNames(spec *btf.Spec) reasonNames {
	if spec == nil {
		return nil
	}
	var enum *btf.Enum
	if err := spec.TypeByName("sk_rst_reason", &enum); err != nil {
		return nil
	}
	names := make(reasonNames, 0, len(enum.Values))
	for _, v := range enum.Values {
		n := strings.TrimPrefix(v.Name, "SK_RST_REASON_")
		if n == "MAX" || v.Value > 0xfffe {
			continue
		}
		for uint64(len(names)) <= v.Value {
			names = append(names, "")
		}
		names[v.Value] = n
	}
	return names
}
