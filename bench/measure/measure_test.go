package measure

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// comm with a space and a ')' inside, as a process can name itself.
	stat := "1234 (tr) cer x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 100 0 0\n"
	got, err := ParseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 4 * time.Second; got != want {
		t.Errorf("cpu = %v, want %v", got, want)
	}
	if _, err := ParseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Error("short stat: want an error")
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\trstwatch\nVmPeak:\t  900000 kB\nVmHWM:\t   41234 kB\nVmRSS:\t 40000 kB\n"
	got, err := ParseVmHWM([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(41234 * 1024); got != want {
		t.Errorf("VmHWM = %d, want %d", got, want)
	}
	if _, err := ParseVmHWM([]byte("Name:\tkthreadd\n")); err == nil {
		t.Error("no VmHWM: want an error")
	}
}

func TestParseSNMP(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm ActiveOpens OutRsts InCsumErrors\nTcp: 1 20 372 0\n"
	got, err := ParseSNMP([]byte(snmp), "Tcp", "OutRsts")
	if err != nil || got != 372 {
		t.Errorf("OutRsts = %d, %v; want 372", got, err)
	}
	if _, err := ParseSNMP([]byte(snmp), "Tcp", "Nope"); err == nil {
		t.Error("missing counter: want an error")
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{nan, 5, nan}, 5},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := Median([]float64{nan}); !math.IsNaN(got) {
		t.Errorf("Median(NaN) = %v, want NaN", got)
	}
}

func pcapFile(bo binary.ByteOrder, magic uint32, lens []uint32, cut int) []byte {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	bo.PutUint32(hdr[0:], magic)
	bo.PutUint16(hdr[4:], 2)
	bo.PutUint16(hdr[6:], 4)
	bo.PutUint32(hdr[16:], 262144)
	bo.PutUint32(hdr[20:], 1)
	b.Write(hdr)
	for _, l := range lens {
		rec := make([]byte, 16)
		bo.PutUint32(rec[8:], l)
		bo.PutUint32(rec[12:], l)
		b.Write(rec)
		b.Write(make([]byte, l))
	}
	return b.Bytes()[:b.Len()-cut]
}

func TestCountPcap(t *testing.T) {
	for _, c := range []struct {
		name string
		file []byte
		want uint64
	}{
		{"little endian", pcapFile(binary.LittleEndian, 0xa1b2c3d4, []uint32{54, 54, 66}, 0), 3},
		{"big endian", pcapFile(binary.BigEndian, 0xa1b2c3d4, []uint32{54, 54}, 0), 2},
		{"nanoseconds", pcapFile(binary.LittleEndian, 0xa1b23c4d, []uint32{54}, 0), 1},
		{"cut short", pcapFile(binary.LittleEndian, 0xa1b2c3d4, []uint32{54, 54}, 10), 1},
		{"empty", pcapFile(binary.LittleEndian, 0xa1b2c3d4, nil, 0), 0},
	} {
		got, err := CountPcap(bytes.NewReader(c.file))
		if err != nil || got != c.want {
			t.Errorf("%s: CountPcap = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	if _, err := CountPcap(strings.NewReader("this is not a pcap file")); err == nil {
		t.Error("text: want an error")
	}
}

func TestTcpdumpStats(t *testing.T) {
	stderr := "tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n" +
		"5 packets captured\n10 packets received by filter\n2 packets dropped by kernel\n"
	c, d, ok := TcpdumpStats([]byte(stderr))
	if !ok || c != 5 || d != 2 {
		t.Errorf("TcpdumpStats = %d, %d, %v; want 5, 2, true", c, d, ok)
	}
	if _, _, ok := TcpdumpStats([]byte("tcpdump: killed\n")); ok {
		t.Error("no statistics: want ok false")
	}
}

func TestBpftrace(t *testing.T) {
	out := "Attaching 3 probes...\nready\nsend 1 x\nLost 12 events\nrecv 1 x\nLost 3 events\n"
	if got := BpftraceLost([]byte(out)); got != 15 {
		t.Errorf("BpftraceLost = %d, want 15", got)
	}
	maps := "Attaching 3 probes...\nready\n\n\n@[rstwatch-bench]: 1000\n@[swapper/1]: 24\n"
	if got, ok := BpftraceMapSum([]byte(maps)); !ok || got != 1024 {
		t.Errorf("BpftraceMapSum = %d, %v; want 1024, true", got, ok)
	}
	ev, lost, err := ScanBpftracePrint(strings.NewReader(out))
	if err != nil || ev != 2 || lost != 15 {
		t.Errorf("ScanBpftracePrint = %d, %d, %v; want 2, 15", ev, lost, err)
	}
	n, err := CountLines(strings.NewReader(out), "send ")
	if err != nil || n != 1 {
		t.Errorf("CountLines = %d, %v; want 1", n, err)
	}
}

func TestScanRstwatchJSON(t *testing.T) {
	out := `{"type":"reset","direction":"send"}
{"type":"lost","count":4}
{"type":"reset","direction":"receive"}
{"type":"summary","total":2,"lost":4,"seen":6,"by_owner":[]}
`
	n, sum, err := ScanRstwatchJSON(strings.NewReader(out))
	if err != nil || n != 2 || sum == nil || *sum != (RstwatchSummary{Total: 2, Lost: 4, Seen: 6}) {
		t.Errorf("ScanRstwatchJSON = %d, %+v, %v", n, sum, err)
	}
	_, sum, err = ScanRstwatchJSON(strings.NewReader(`{"type":"reset"}` + "\n"))
	if err != nil || sum != nil {
		t.Errorf("no summary: got %+v, %v", sum, err)
	}
}

func TestMetricSum(t *testing.T) {
	text := `# HELP rstwatch_resets_total Resets.
# TYPE rstwatch_resets_total counter
rstwatch_resets_total{direction="send",owner_comm="a b}"} 10
rstwatch_resets_total{direction="receive"} 5.5
rstwatch_resets_total_other 100
rstwatch_lost 3
`
	if got, ok := MetricSum([]byte(text), "rstwatch_resets_total"); !ok || got != 15.5 {
		t.Errorf("MetricSum = %v, %v; want 15.5, true", got, ok)
	}
	if _, ok := MetricSum([]byte(text), "nope"); ok {
		t.Error("missing metric: want false")
	}
}

func TestParseFdinfoProgID(t *testing.T) {
	prog := "pos:\t0\nflags:\t02000002\nprog_type:\t5\nprog_jited:\t1\nprog_tag:\tabc\nmemlock:\t4096\nprog_id:\t725\n"
	if id, ok := ParseFdinfoProgID([]byte(prog)); !ok || id != 725 {
		t.Errorf("prog fd: %d, %v; want 725", id, ok)
	}
	if _, ok := ParseFdinfoProgID([]byte("pos:\t0\nflags:\t02\nmnt_id:\t20\n")); ok {
		t.Error("plain file: want no program")
	}
}
