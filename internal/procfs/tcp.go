package procfs

import (
	"bufio"
	"bytes"
	"net/netip"
	"strconv"
	"strings"
)

// TCPListen is the state column of a listening socket in /proc/net/tcp.
const TCPListen = 0x0A

// TCPSocket is one line of /proc/net/tcp or tcp6: the socket's local and
// remote ends (an IPv4 address on an IPv6 socket shown as IPv4), its state,
// and its inode, 0 for a socket no process holds (a timewait one).
type TCPSocket struct {
	Local, Remote netip.AddrPort
	State         uint8
	Inode         uint64
}

// ParseTCP reads /proc/net/tcp or tcp6 ("sl local rem st tx:rx tr:when
// retrnsmt uid timeout inode …"); the header and lines it cannot read are
// skipped.
func ParseTCP(table []byte) []TCPSocket {
	var out []TCPSocket
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		l, ok1 := parseHexAddrPort(f[1])
		r, ok2 := parseHexAddrPort(f[2])
		st, err1 := strconv.ParseUint(f[3], 16, 8)
		ino, err2 := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			continue
		}
		out = append(out, TCPSocket{Local: l, Remote: r, State: uint8(st), Inode: ino})
	}
	return out
}

// parseHexAddrPort reads "0100007F:0885" (IPv4) or the 32-hex-digit IPv6
// form: the address in host-order 32-bit words, the port big-endian.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	h, ps, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(ps, 16, 16)
	if err != nil || (len(h) != 8 && len(h) != 32) {
		return netip.AddrPort{}, false
	}
	var b [16]byte
	n := len(h) / 2
	for w := 0; w < n/4; w++ {
		v, err := strconv.ParseUint(h[w*8:w*8+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, false
		}
		// Each 32-bit word is in the kernel's (little-endian) order.
		b[w*4], b[w*4+1], b[w*4+2], b[w*4+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	var a netip.Addr
	if n == 4 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}
