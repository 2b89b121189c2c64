// Package kallsyms names kernel text addresses from /proc/kallsyms, for the
// kernel stacks the packet-level view records. Only function (text) symbols
// are kept. The kernel gives no sizes, so an address is named by the
// nearest function that starts at or below it, and only within maxFuncSize
// of it: an address in a module loaded after the table was read would
// otherwise take the name of a neighbour.
package kallsyms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// maxFuncSize bounds how far past its start an address may be to be named
// by a function: the largest kernel functions are a few tens of KiB.
const maxFuncSize = 256 << 10

// Table is a sorted set of kernel function start addresses and names.
type Table struct {
	addrs []uint64
	names []string
}

// Load reads a kallsyms file (normally /proc/kallsyms). Addresses read as
// zero (kptr_restrict, or no privileges) make it fail: a table of zeros
// would name nothing right.
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kallsyms: %w", err)
	}
	defer f.Close()
	return parse(f)
}

var errZeroAddrs = errors.New("kallsyms: addresses read as zero (kernel.kptr_restrict, or not root)")

func parse(r io.Reader) (*Table, error) {
	type sym struct {
		addr uint64
		name string
	}
	var (
		syms  []sym
		zeros int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// "ffffffff81f81c50 T nf_hook_slow" or "… t name\t[module]"
		line := sc.Bytes()
		a, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(rest) < 3 || rest[1] != ' ' {
			continue
		}
		if t := rest[0]; t != 't' && t != 'T' {
			continue
		}
		name := rest[2:]
		if i := bytes.IndexByte(name, '\t'); i >= 0 {
			name = name[:i]
		}
		addr, err := strconv.ParseUint(string(a), 16, 64)
		if err != nil {
			continue
		}
		if addr == 0 {
			zeros++
			continue
		}
		syms = append(syms, sym{addr, string(name)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kallsyms: %w", err)
	}
	if len(syms) == 0 {
		if zeros > 0 {
			return nil, errZeroAddrs
		}
		return nil, errors.New("kallsyms: no function symbols")
	}
	slices.SortFunc(syms, func(x, y sym) int {
		switch {
		case x.addr < y.addr:
			return -1
		case x.addr > y.addr:
			return 1
		}
		return 0
	})
	t := &Table{addrs: make([]uint64, len(syms)), names: make([]string, len(syms))}
	for i, s := range syms {
		t.addrs[i], t.names[i] = s.addr, s.name
	}
	return t, nil
}

// Name returns the function that addr lies in, "" when none is known.
func (t *Table) Name(addr uint64) string {
	i, found := slices.BinarySearch(t.addrs, addr)
	if !found {
		i--
	}
	if i < 0 || addr-t.addrs[i] > maxFuncSize {
		return ""
	}
	return t.names[i]
}

// Len is the number of function symbols.
func (t *Table) Len() int { return len(t.addrs) }
