package measure

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// CountPcap counts the records of a classic pcap file (either byte order,
// micro- or nanosecond timestamps). A record cut short at the end, as when
// tcpdump is killed mid-write, is not counted.
func CountPcap(r io.Reader) (uint64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [24]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(hdr[:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return 0, fmt.Errorf("not a pcap file (magic % x)", hdr[:4])
	}
	var n uint64
	var rec [16]byte
	for {
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return n, nil
			}
			return n, fmt.Errorf("pcap record %d: %w", n+1, err)
		}
		incl := int64(bo.Uint32(rec[8:12]))
		if got, err := io.CopyN(io.Discard, br, incl); err != nil {
			if got < incl {
				return n, nil
			}
			return n, fmt.Errorf("pcap record %d: %w", n+1, err)
		}
		n++
	}
}

// CountLines counts the lines of r that start with prefix ("" counts all).
func CountLines(r io.Reader, prefix string) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	p := []byte(prefix)
	var n uint64
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), p) {
			n++
		}
	}
	return n, sc.Err()
}

var (
	tcpdumpStat = regexp.MustCompile(`(?m)^(\d+) packets? (captured|received by filter|dropped by kernel)`)
	lostLine    = regexp.MustCompile(`(?m)Lost (\d+) events`)
	mapLine     = regexp.MustCompile(`(?m)^@\[.*\]: (\d+)$`)
)

// TcpdumpStats parses tcpdump's closing lines on stderr ("N packets
// captured", "N packets dropped by kernel").
func TcpdumpStats(stderr []byte) (captured, dropped uint64, ok bool) {
	var seen bool
	for _, m := range tcpdumpStat.FindAllSubmatch(stderr, -1) {
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		switch string(m[2]) {
		case "captured":
			captured, seen = v, true
		case "dropped by kernel":
			dropped = v
		}
	}
	return captured, dropped, seen
}

// BpftraceLost sums bpftrace's "Lost N events" notices: events its perf
// buffer had no room for.
func BpftraceLost(out []byte) uint64 {
	var n uint64
	for _, m := range lostLine.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		n += v
	}
	return n
}

// BpftraceMapSum sums the values of a count() map bpftrace prints at exit
// ("@[key]: N" lines).
func BpftraceMapSum(out []byte) (uint64, bool) {
	var n uint64
	ms := mapLine.FindAllSubmatch(out, -1)
	for _, m := range ms {
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		n += v
	}
	return n, len(ms) > 0
}

// ScanBpftracePrint counts the event lines of the bench's bpftrace printf
// script ("send …", "recv …") and its "Lost N events" notices, in one pass
// over what may be a large file.
func ScanBpftracePrint(r io.Reader) (events, lost uint64, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("send ")), bytes.HasPrefix(line, []byte("recv ")):
			events++
		case bytes.Contains(line, []byte("Lost ")):
			lost += BpftraceLost(line)
		}
	}
	return events, lost, sc.Err()
}
