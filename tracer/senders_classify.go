package tracer

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/kallsyms"
)

// symbolizer names the kernel stack of a reset made without a socket. The
// table is read again when the kernel's module list changes (a firewall
// module loaded after start), checked at most every modulesCheck.
type symbolizer struct {
	kallsymsPath, modulesPath string

	mu      sync.Mutex
	table   *kallsyms.Table
	modules []byte
	checked time.Time
	err     error
}

const modulesCheck = 100 * time.Millisecond

func newSymbolizer(kallsymsPath, modulesPath string) *symbolizer {
	return &symbolizer{kallsymsPath: kallsymsPath, modulesPath: modulesPath}
}

func (s *symbolizer) load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modules, _ = os.ReadFile(s.modulesPath)
	s.checked = time.Now()
	s.table, s.err = kallsyms.Load(s.kallsymsPath)
	return s.err
}

// names turns return addresses into function names ("" where unknown),
// innermost first, into dst.
func (s *symbolizer) names(dst []string, stack []uint64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.checked) >= modulesCheck {
		s.checked = now
		if m, err := os.ReadFile(s.modulesPath); err == nil && !bytes.Equal(m, s.modules) {
			s.modules = m
			if t, err := kallsyms.Load(s.kallsymsPath); err == nil {
				s.table = t
			}
		}
	}
	dst = dst[:0]
	for _, a := range stack {
		name := ""
		if s.table != nil && a != 0 {
			name = s.table.Name(a)
		}
		dst = append(dst, name)
	}
	return dst
}

// baseName drops the compiler's suffixes (.isra.0, .part.0, .cold, …).
func baseName(fn string) string {
	if i := strings.IndexByte(fn, '.'); i > 0 {
		return fn[:i]
	}
	return fn
}

// Functions that build a reset on a firewall's behalf: nf_send_reset{,6}
// (nft reject, xt REJECT), the netdev family's nf_reject_skb_v{4,6}_tcp_reset,
// and the callers that a stack may show when those are inlined.
func isRejectFunc(fn string) bool {
	switch fn {
	case "nf_send_reset", "nf_send_reset6", "reject_tg", "reject_tg6",
		"nf_reject_skb_v4_tcp_reset", "nf_reject_skb_v6_tcp_reset":
		return true
	}
	return strings.HasPrefix(fn, "nft_reject_")
}

// The rule engines, by the function that walks their rules.
var ruleEngines = map[string]string{
	"nft_do_chain":  "nftables",
	"ipt_do_table":  "iptables (legacy)",
	"ip6t_do_table": "ip6tables (legacy)",
	"ebt_do_table":  "ebtables",
	"arpt_do_table": "arptables",
}

// Which netfilter hook a function that runs one belongs to. NF_HOOK is
// inlined into these, so they are the frame above nf_hook_slow.
var hookCallers = map[string]string{
	"ip_rcv":                   "prerouting",
	"ip_rcv_core":              "prerouting",
	"ip_list_rcv":              "prerouting",
	"ip_sublist_rcv":           "prerouting",
	"ipv6_rcv":                 "prerouting",
	"ipv6_list_rcv":            "prerouting",
	"ip6_sublist_rcv":          "prerouting",
	"ip_local_deliver":         "input",
	"ip6_input":                "input",
	"ip_forward":               "forward",
	"ip6_forward":              "forward",
	"__ip_local_out":           "output",
	"ip_local_out":             "output",
	"__ip6_local_out":          "output",
	"ip6_local_out":            "output",
	"ip6_xmit":                 "output",
	"raw_send_hdrinc":          "output",
	"rawv6_send_hdrinc":        "output",
	"ip_output":                "postrouting",
	"ip_mc_output":             "postrouting",
	"ip6_output":               "postrouting",
	"ip6_finish_output":        "postrouting",
	"br_handle_frame":          "bridge prerouting",
	"br_handle_frame_finish":   "bridge input",
	"br_pass_frame_up":         "bridge input",
	"__br_forward":             "bridge forward",
	"br_forward_finish":        "bridge postrouting",
	"br_dev_queue_push_xmit":   "bridge postrouting",
	"__netif_receive_skb_core": "netdev ingress",
	"nf_hook_ingress":          "netdev ingress",
	"nf_hook_egress":           "netdev egress",
	"__dev_queue_xmit":         "netdev egress",
}

// isTCPStackFunc: the TCP stack's own senders of resets. On kernels
// without the tcp_send_reset mark (see senders.c) an IPv6 reset answering
// a segment reaches the queue without a socket, and only its stack tells.
func isTCPStackFunc(fn string) bool {
	switch fn {
	case "tcp_v6_send_response", "tcp_v6_send_reset", "tcp_v4_send_reset", "tcp_send_active_reset",
		"ip_send_unicast_reply", "tcp_v4_send_ack", "tcp_v6_send_ack":
		return true
	}
	return false
}

// fromTCPStack says whether the stack shows the TCP stack sending, before
// any firewall's reject (a reject's stack may hold TCP further out, in the
// segment it answers).
func fromTCPStack(frames []string) bool {
	for _, f := range frames {
		f = baseName(f)
		if isRejectFunc(f) {
			return false
		}
		if isTCPStackFunc(f) {
			return true
		}
	}
	return false
}

// classifyNoSocket tells what made a reset that has no socket from the
// kernel stack that queued it, innermost frame first: a firewall rule
// (which engine, at which hook) or something else.
func classifyNoSocket(frames []string) (class event.SenderClass, detail, hook string) {
	reject := -1
	for i, f := range frames {
		if isRejectFunc(baseName(f)) {
			reject = i
			break
		}
	}
	if reject < 0 {
		return event.SenderUnknown, "", ""
	}
	class = event.SenderNetfilter
	xt := false
	engineAt := -1
	for i := reject + 1; i < len(frames) && engineAt < 0; i++ {
		f := baseName(frames[i])
		if strings.HasPrefix(f, "nft_target_eval") {
			xt = true // an xtables target run by nf_tables: iptables-nft
		}
		if e, ok := ruleEngines[f]; ok {
			detail, engineAt = e, i
		}
	}
	if engineAt < 0 {
		return class, "", ""
	}
	if xt && detail == "nftables" {
		detail = "nftables (xtables REJECT target, as iptables-nft makes)"
	}
	// The hook: the first frame past the engine that runs a hook, skipping
	// nf_hook_slow and the families' chain wrappers (nft_do_chain_inet, …).
	for i := engineAt + 1; i < len(frames); i++ {
		f := baseName(frames[i])
		if h, ok := hookCallers[f]; ok {
			return class, detail, h
		}
		if f == "nf_hook_slow" || f == "nf_hook_slow_list" || strings.HasPrefix(f, "nft_do_chain") ||
			strings.HasPrefix(f, "ipt_") || strings.HasPrefix(f, "ip6t_") || strings.HasPrefix(f, "iptable_") ||
			strings.HasPrefix(f, "ip6table_") || strings.HasPrefix(f, "nf_") || f == "" {
			continue
		}
		break
	}
	return class, detail, ""
}
