package netns

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
)

// LocalAddrs lists the addresses the namespace ino answers to as its own:
// IPv4 from the kernel's local routing table (/proc/net/fib_trie, "/32
// host LOCAL"), IPv6 from /proc/net/if_inet6.
func (ix *Index) LocalAddrs(ino uint32) ([]netip.Addr, error) {
	trie, err := ix.ReadFile(ino, "fib_trie")
	if err != nil {
		return nil, err
	}
	addrs := parseFibTrieLocal(trie)
	// if_inet6 is absent where IPv6 is disabled: that is no error.
	if v6, err := ix.ReadFile(ino, "if_inet6"); err == nil {
		addrs = append(addrs, parseIfInet6(v6)...)
	}
	return addrs, nil
}

// parseFibTrieLocal finds "|-- a.b.c.d" leaves followed by "/32 host
// LOCAL" (each address appears under both the main and local tables).
func parseFibTrieLocal(b []byte) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var (
		out  []netip.Addr
		leaf netip.Addr
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "|-- "); ok {
			leaf, _ = netip.ParseAddr(rest)
			continue
		}
		if strings.HasPrefix(line, "/32 host LOCAL") && leaf.Is4() && !seen[leaf] {
			seen[leaf] = true
			out = append(out, leaf)
		}
	}
	return out
}

// parseIfInet6 reads "fd000000000000000000000000000002 04 40 00 82 eth0".
func parseIfInet6(b []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || len(f[0]) != 32 {
			continue
		}
		raw, err := hex.DecodeString(f[0])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrFrom16([16]byte(raw)))
	}
	return out
}
