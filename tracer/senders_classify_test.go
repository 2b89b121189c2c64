package tracer

import (
	"strings"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Stacks as bpf_get_stack gave them at net_dev_queue on 6.18 (innermost
// first, offsets dropped), and ones made after their callers for the other
// engines and hooks.
func TestClassifyNoSocket(t *testing.T) {
	stack := func(s string) []string { return strings.Fields(s) }
	for _, c := range []struct {
		name         string
		frames       []string
		class        event.SenderClass
		detail, hook string
	}{
		{"nft inet input, IPv4 (measured)", stack(`__dev_queue_xmit ip_finish_output2 ip_output nf_send_reset
			nft_reject_inet_eval nft_do_chain nft_do_chain_inet nf_hook_slow ip_local_deliver
			__netif_receive_skb_one_core process_backlog __napi_poll net_rx_action handle_softirqs
			do_softirq.part.0 __local_bh_enable_ip __neigh_event_send neigh_resolve_output ip_finish_output2
			ip_output __ip_queue_xmit __tcp_transmit_skb tcp_connect tcp_v4_connect`),
			event.SenderNetfilter, "nftables", "input"},
		{"nft inet input, IPv6 (measured)", stack(`__dev_queue_xmit ip6_finish_output ip6_output nf_send_reset6
			nft_reject_inet_eval nft_do_chain nft_do_chain_inet nf_hook_slow ip6_input
			__netif_receive_skb_one_core process_backlog`),
			event.SenderNetfilter, "nftables", "input"},
		{"iptables legacy forward", stack(`__dev_queue_xmit ip_finish_output2 ip_output nf_send_reset reject_tg
			ipt_do_table iptable_filter_hook nf_hook_slow ip_forward ip_rcv_finish ip_rcv`),
			event.SenderNetfilter, "iptables (legacy)", "forward"},
		{"iptables-nft output", stack(`__dev_queue_xmit ip_finish_output2 ip_output nf_send_reset reject_tg
			nft_target_eval_xt nft_do_chain nft_do_chain_ipv4 nf_hook_slow __ip_local_out ip_local_out`),
			event.SenderNetfilter, "nftables (xtables REJECT target, as iptables-nft makes)", "output"},
		{"nft prerouting with suffixes", stack(`__dev_queue_xmit ip_output nf_send_reset.constprop.0
			nft_reject_ipv4_eval nft_do_chain nft_do_chain_ipv4 nf_hook_slow ip_rcv`),
			event.SenderNetfilter, "nftables", "prerouting"},
		{"reject without an engine frame", stack(`__dev_queue_xmit ip_output nf_send_reset`), event.SenderNetfilter, "", ""},
		{"unnamed frames", []string{"", "", ""}, event.SenderUnknown, "", ""},
		{"a tc program's redirect", stack(`__dev_queue_xmit skb_do_redirect tcf_classify sch_handle_egress`), event.SenderUnknown, "", ""},
	} {
		class, detail, hook := classifyNoSocket(c.frames)
		if class != c.class || detail != c.detail || hook != c.hook {
			t.Errorf("%s: %q %q %q, want %q %q %q", c.name, class, detail, hook, c.class, c.detail, c.hook)
		}
	}
}

// An IPv6 reset answering a segment leaves without a socket; where the
// kernel's mark is missing, its stack shows the TCP stack sent it. A
// firewall's reject answering a TCP segment is still the firewall's.
func TestFromTCPStack(t *testing.T) {
	if !fromTCPStack(strings.Fields(`__dev_queue_xmit ip6_finish_output ip6_output ip6_xmit tcp_v6_send_response
		tcp_v6_send_reset tcp_v6_rcv ip6_protocol_deliver_rcu`)) {
		t.Error("tcp_v6_send_response not taken as the TCP stack")
	}
	if fromTCPStack(strings.Fields(`__dev_queue_xmit ip6_output nf_send_reset6 nft_reject_inet_eval nft_do_chain
		nf_hook_slow ip6_input tcp_v6_send_reset`)) {
		t.Error("a firewall's reject taken as the TCP stack")
	}
}
