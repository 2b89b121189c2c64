package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rstwatch/rstwatch/bench/storm"
)

// The peers' filter and scripts.
const (
	rstFilter = "tcp[tcpflags] & (tcp-rst) != 0"

	// BEGIN runs once every probe is attached: its line is the readiness
	// signal. bpftrace flushes each line when stdout is a file.
	bpftracePrintf = `BEGIN { printf("ready\n"); }
tracepoint:tcp:tcp_send_reset { printf("send %d %s\n", pid, comm); }
tracepoint:tcp:tcp_receive_reset { printf("recv %d %s\n", pid, comm); }
`
	bpftraceCount = `BEGIN { printf("ready\n"); }
tracepoint:tcp:tcp_send_reset, tracepoint:tcp:tcp_receive_reset { @[comm] = count(); }
`
)

// Tracers is every configuration, the bare storm first. rstwatch is the
// path of the rstwatch binary under test.
func Tracers(rstwatch string) []Tracer {
	return []Tracer{
		{Name: Baseline, How: "nothing attached", shapes: storm.Shapes},
		traceJSON(rstwatch),
		serve(rstwatch),
		traceJSON(rstwatch, allSendersFlag),
		serve(rstwatch, allSendersFlag),
		floorTracer(floorEmpty),
		floorTracer(floorCount),
		floorTracer(floorHooksClassic),
		floorTracer(floorHooksTyped),
		floorTracer(floorRing),
		tcpdump("tcpdump-pcap", true),
		tcpdump("tcpdump-text", false),
		bpftrace("bpftrace-printf", bpftracePrintf),
		bpftrace("bpftrace-count", bpftraceCount),
	}
}

// Baseline is the configuration with nothing attached.
const Baseline = "baseline"

func missingBinary(path, install string) func() string {
	return func() string {
		if _, err := exec.LookPath(path); err != nil {
			return fmt.Sprintf("%s not installed (%s)", filepath.Base(path), install)
		}
		return ""
	}
}

func rstwatchMissing(bin string) string {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Sprintf("rstwatch binary %s not found (go build -o rstwatch ./cmd/rstwatch)", bin)
	}
	return ""
}

func fileReady(path string) func() bool {
	return func() bool { _, err := os.Stat(path); return err == nil }
}

// fileHasLine is for tracers that announce readiness in their output file.
func fileHasLine(path, line string) func() bool {
	return func() bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		head := make([]byte, 4096)
		n, _ := f.Read(head)
		return strings.Contains(string(head[:n]), line+"\n")
	}
}

func bpftrace(name, script string) Tracer {
	const bin = "bpftrace"
	return Tracer{
		Name:        name,
		How:         "bpftrace: " + strings.ReplaceAll(strings.TrimSpace(script[strings.Index(script, "\n")+1:]), "\n", " "),
		Unavailable: missingBinary(bin, "apt-get install bpftrace"),
		start: func(ctx context.Context, dir string) (session, error) {
			scriptPath := filepath.Join(dir, name+".bt")
			if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
				return nil, fmt.Errorf("writing the bpftrace script: %w", err)
			}
			out := filepath.Join(dir, name+".out")
			p, err := startProc([]string{bin, scriptPath}, out)
			if err != nil {
				return nil, err
			}
			if err := p.waitReady(ctx, "its BEGIN line", fileHasLine(out, "ready")); err != nil {
				p.kill()
				return nil, err
			}
			if script == bpftraceCount {
				return &bpftraceCountSession{proc: p, out: out}, nil
			}
			return &bpftracePrintSession{proc: p, out: out}, nil
		},
	}
}

func tcpdump(name string, pcap bool) Tracer {
	const bin = "tcpdump"
	argv := []string{bin, "-n", "-i", "lo"}
	how := "tcpdump -n -i lo '" + rstFilter + "'"
	if pcap {
		// -Z root: tcpdump drops to its own user after opening lo and could
		// then not write into the harness's directory.
		argv = append(argv, "-Z", "root", "-w")
		how = "tcpdump -n -i lo -w FILE '" + rstFilter + "'"
	} else {
		how += " > FILE"
	}
	return Tracer{
		Name:        name,
		How:         how,
		Unavailable: missingBinary(bin, "apt-get install tcpdump"),
		// libpcap hands over a TPACKET_V3 block when it fills or after its
		// 1 s timeout; packets in a block still open at SIGINT are neither
		// captured nor counted as dropped.
		settle: 1500 * time.Millisecond,
		start: func(ctx context.Context, dir string) (session, error) {
			out := filepath.Join(dir, name+".out")
			args := append([]string(nil), argv...)
			stdout := out
			if pcap {
				args, stdout = append(args, out), ""
			}
			p, err := startProc(append(args, rstFilter), stdout)
			if err != nil {
				return nil, err
			}
			ready := func() bool { return strings.Contains(string(p.stderr.Bytes()), "listening on") }
			if err := p.waitReady(ctx, "\"listening on\"", ready); err != nil {
				p.kill()
				return nil, err
			}
			return &tcpdumpSession{proc: p, out: out, pcap: pcap}, nil
		},
	}
}
