package tracer

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// DefaultSendersRingSize holds ~2500 records of resets the TCP stack did
// not make (~410 bytes each with their kernel stack): such resets are rare,
// and a storm of them is counted as lost past that, never hidden.
const DefaultSendersRingSize = 1 << 20

// sendersLost is the one line said when the packet-level view cannot run.
const sendersLost = "resets sent by netfilter, raw or packet sockets and other BPF programs are not seen (only the TCP stack's)"

// senders is the packet-level view (Config.AllSenders): programs on
// net:net_dev_queue and net:net_dev_start_xmit that report every TCP
// segment with RST leaving a device of any namespace that the TCP stack
// did not make. It is loaded apart from the reset programs, so that a
// kernel refusing it still traces.
type senders struct {
	coll  *ebpf.Collection
	objs  sendersMaps
	links []link.Link
	syms  *symbolizer
}

// sendersAttach lists the packet-level view's hooks. Only the first is
// needed: without the others it runs with the loss openSenders names.
var sendersAttach = []struct{ prog, tracepoint string }{
	{sendersProgRstwatchSendersQueue, "net:net_dev_queue"},
	{sendersProgRstwatchSendersXmit, "net:net_dev_start_xmit"},
	{sendersProgRstwatchSendersTcpReset, "tcp:tcp_send_reset"},
}

// openSenders loads and attaches the packet-level view. Where only
// net_dev_start_xmit cannot be hooked it runs without it, and partial says
// what is then not seen; its error is one sentence for Degraded.
func openSenders(cfg Config, kspec *btf.Spec, log *slog.Logger) (s *senders, partial string, err error) {
	s, err = openSendersWith(cfg, kspec, log, true)
	if err == nil {
		return s, "", nil
	}
	s, err2 := openSendersWith(cfg, kspec, log, false)
	if err2 != nil {
		return nil, "", err
	}
	return s, fmt.Sprintf("the packet-level view runs on net:net_dev_queue alone (%v): resets written on packet sockets that bypass the queue (PACKET_QDISC_BYPASS, AF_XDP) are not seen, and the TCP stack's IPv6 resets without a socket are told by their kernel stack, at more cost", err), nil
}

func openSendersWith(cfg Config, kspec *btf.Spec, log *slog.Logger, withXmit bool) (*senders, error) {
	spec, err := loadSendersSpec()
	if err != nil {
		return nil, fmt.Errorf("reading its BPF object: %w", err)
	}
	attach := sendersAttach
	if !withXmit {
		for _, a := range sendersAttach[1:] {
			delete(spec.Programs, a.prog)
		}
		attach = sendersAttach[:1]
	}
	size := cfg.SendersRingSize
	if size == 0 {
		size = DefaultSendersRingSize
	}
	if err := checkRingSize(size); err != nil {
		return nil, err
	}
	spec.Maps[sendersMapSenderEvents].MaxEntries = uint32(size)
	wakeup := uint64(0)
	if !cfg.WakeupPerEvent {
		wakeup = uint64(size / 4)
	}
	for name, v := range map[string]any{
		sendersVarFilterNetns:    cfg.NetNS,
		sendersVarWakeupBytes:    wakeup,
		sendersVarPacketsAtQueue: !withXmit,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{KernelTypes: kspec},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			log.Debug("verifier log of the packet-level view", "log", fmt.Sprintf("%+v", ve))
		}
		return nil, fmt.Errorf("loading its BTF-typed programs failed: %w", err)
	}
	s := &senders{coll: coll, syms: newSymbolizer(procKallsyms, procModules)}
	if err := coll.Assign(&s.objs); err != nil {
		s.close()
		return nil, err
	}
	for _, a := range attach {
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[a.prog], AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("attaching to %s failed: %w", a.tracepoint, err)
		}
		s.links = append(s.links, l)
	}
	if err := s.syms.load(); err != nil {
		// Without names, no-socket resets are reported as "unknown"
		// rather than "netfilter": say so once.
		log.Warn("kernel symbols unreadable: resets made by netfilter will be reported with sender unknown", "error", err)
	}
	return s, nil
}

func (s *senders) close() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	errs = append(errs, s.objs.Close())
	if s.coll != nil {
		s.coll.Close()
		s.coll = nil
	}
	return errors.Join(errs...)
}

// SendersStats are the packet-level view's own counters, summed over CPUs.
type SendersStats struct {
	Emitted  uint64 // resets the TCP stack did not make, recorded
	Lost     uint64 // records dropped because the ring buffer was full
	Unparsed uint64 // IP packets of such senders whose TCP header was not found
}

func (s *senders) stat(i sendersSenderStat) (uint64, error) {
	var per []uint64
	if err := s.objs.SenderStats.Lookup(uint32(i), &per); err != nil {
		return 0, fmt.Errorf("tracer: reading packet-level counter %d: %w", i, err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

func (s *senders) stats() (SendersStats, error) {
	var st SendersStats
	for i, d := range []*uint64{&st.Emitted, &st.Lost, &st.Unparsed} {
		n, err := s.stat(sendersSenderStat(i))
		if err != nil {
			return st, err
		}
		*d = n
	}
	return st, nil
}

// SendersStats reads the packet-level view's counters; ok is false when
// it is not running.
func (t *Tracer) SendersStats() (st SendersStats, ok bool, err error) {
	if t.senders == nil {
		return st, false, nil
	}
	st, err = t.senders.stats()
	return st, true, err
}

// AllSenders says whether the packet-level view is running.
func (t *Tracer) AllSenders() bool { return t.senders != nil }

// loadSendersSpec is loadSenders; a test makes it name a tracepoint this
// kernel lacks.
var loadSendersSpec = loadSenders

// procKallsyms and procModules are where the kernel lists its symbols and
// modules; tests replace them.
var (
	procKallsyms = "/proc/kallsyms"
	procModules  = "/proc/modules"
)
