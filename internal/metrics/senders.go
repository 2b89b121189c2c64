package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Senders counts the resets that the TCP stack did not make, seen leaving
// a device by the packet-level view (serve --all-senders), by sender.
// Safe for concurrent use.
type Senders struct {
	mu       sync.Mutex
	comms    labelCap
	counts   map[senderSeries]uint64
	folded   uint64
	inferred uint64 // received resets marked as not sent by the TCP stack
}

type senderSeries struct{ class, detail, hook, comm string }

// NewSenders bounds the sender_comm label like owner_comm.
func NewSenders(l Limits) *Senders {
	l = l.withDefaults()
	return &Senders{comms: newLabelCap(l.OwnerComms), counts: map[senderSeries]uint64{}}
}

// Add counts e if it is a send by another sender, or a received reset
// marked as not sent by the TCP stack; everything else is left.
func (s *Senders) Add(e *event.Event) {
	if e.Sender == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Direction == event.Receive && e.Sender.Inferred {
		s.inferred++
		return
	}
	if e.Direction != event.Send || e.Sender.Inferred {
		return
	}
	comm := e.Sender.Comm
	if e.Sender.Class == event.SenderRawSocket && comm == "" {
		comm = unknownComm
	}
	comm, folded := s.comms.fold(comm)
	if folded {
		s.folded++
	}
	s.counts[senderSeries{string(e.Sender.Class), e.Sender.Detail, e.Sender.Hook, comm}]++
}

var (
	descOtherSenders = prometheus.NewDesc("rstwatch_resets_other_senders_total",
		"Resets the TCP stack did not make, seen leaving a device (serve --all-senders): sender is netfilter (detail: nftables, iptables (legacy), …; hook: input, forward, …), raw socket (detail: raw IP or packet socket; sender_comm: the process), or unknown. The kernel's Tcp OutRsts does not count them.",
		[]string{"sender", "detail", "hook", "sender_comm"}, nil)
	descNotFromStack = prometheus.NewDesc("rstwatch_received_resets_not_from_tcp_stack_total",
		"Received resets whose sender's address is on this host but that no TCP stack of this host was traced sending (inferred; only counted when serve streams events, --events-file).", nil, nil)
	descSendersFolded = prometheus.NewDesc("rstwatch_resets_other_senders_folded_total",
		"Resets of rstwatch_resets_other_senders_total whose sender_comm was folded into \"other\" (cap reached).", nil, nil)
)

func (s *Senders) Describe(chan<- *prometheus.Desc) {}

func (s *Senders) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.counts {
		ch <- prometheus.MustNewConstMetric(descOtherSenders, prometheus.CounterValue, float64(v), k.class, k.detail, k.hook, k.comm)
	}
	ch <- prometheus.MustNewConstMetric(descSendersFolded, prometheus.CounterValue, float64(s.folded))
	ch <- prometheus.MustNewConstMetric(descNotFromStack, prometheus.CounterValue, float64(s.inferred))
}
