package harness

import (
	"context"
	"fmt"
	"os"

	"github.com/rstwatch/rstwatch/bench/measure"
)

type tcpdumpSession struct {
	*proc
	out  string
	pcap bool
}

func (s *tcpdumpSession) stop(ctx context.Context) (tally, error) {
	tl, err := s.end(ctx)
	tl.PerReset, tl.Unit = 1, "packets"
	if err != nil {
		return tl, err
	}
	f, err := os.Open(s.out)
	if err != nil {
		return tl, fmt.Errorf("tcpdump output: %w", err)
	}
	defer f.Close()
	if s.pcap {
		tl.Received, err = measure.CountPcap(f)
	} else {
		tl.Received, err = measure.CountLines(f, "")
	}
	if err != nil {
		return tl, fmt.Errorf("reading tcpdump output: %w", err)
	}
	if _, dropped, ok := measure.TcpdumpStats(s.stderr.Bytes()); ok {
		tl.Lost = &dropped
	}
	return tl, nil
}

type bpftracePrintSession struct {
	*proc
	out string
}

func (s *bpftracePrintSession) stop(ctx context.Context) (tally, error) {
	tl, err := s.end(ctx)
	tl.PerReset, tl.Unit = 2, "events"
	if err != nil {
		return tl, err
	}
	f, err := os.Open(s.out)
	if err != nil {
		return tl, fmt.Errorf("bpftrace output: %w", err)
	}
	defer f.Close()
	events, lost, err := measure.ScanBpftracePrint(f)
	if err != nil {
		return tl, fmt.Errorf("reading bpftrace output: %w", err)
	}
	lost += measure.BpftraceLost(s.stderr.Bytes())
	tl.Received, tl.Lost = events, &lost
	return tl, nil
}

type bpftraceCountSession struct {
	*proc
	out string
}

func (s *bpftraceCountSession) stop(ctx context.Context) (tally, error) {
	tl, err := s.end(ctx)
	tl.PerReset, tl.Unit = 2, "events"
	if err != nil {
		return tl, err
	}
	b, err := os.ReadFile(s.out)
	if err != nil {
		return tl, fmt.Errorf("bpftrace output: %w", err)
	}
	n, ok := measure.BpftraceMapSum(b)
	if !ok {
		tl.Note = "no map printed"
	}
	tl.Received = n
	return tl, nil
}
