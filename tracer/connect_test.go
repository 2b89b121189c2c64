package tracer

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// connects collects the ZooKeeper connect records of a tracer.
type connects struct {
	mu   sync.Mutex
	seen []event.Connect
}

func (c *connects) add(x *event.Connect) {
	c.mu.Lock()
	c.seen = append(c.seen, *x)
	c.mu.Unlock()
}

// wait returns the record of a connection seen from local, within 3 s.
func (c *connects) wait(t *testing.T, local, remote netip.AddrPort) event.Connect {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		for _, x := range c.seen {
			if x.Local == local && x.Remote == remote {
				c.mu.Unlock()
				return x
			}
		}
		c.mu.Unlock()
	}
	t.Fatalf("no connect record %s -> %s; seen %+v", local, remote, c.seen)
	return event.Connect{}
}

// A connection to a ZooKeeper port is reported on both ends, with the
// process that made it (connect) and the one that accepted it, when
// streaming events and when only aggregating (serve); other ports are not.
func TestZooKeeperConnects(t *testing.T) {
	testenv.RequireBPF(t)
	for _, aggregateOnly := range []bool{false, true} {
		name := "events"
		if aggregateOnly {
			name = "aggregate-only"
		}
		t.Run(name, func(t *testing.T) {
			s := startAgent(t, "rstw-zkserver", "")
			c := startAgent(t, "rstw-zkclient", "")
			other := startAgent(t, "rstw-other", "")
			srv := addrPort(t, s.do("listen 127.0.0.1:0")[0])
			otherSrv := addrPort(t, other.do("listen 127.0.0.1:0")[0])

			cfg := Config{ZKPorts: []uint16{srv.Port()}}
			if aggregateOnly {
				cfg.Aggregate, cfg.NoEvents = true, true
			}
			tr, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			var got connects
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- tr.Run(ctx, Callbacks{Event: func(*event.Event) {}, Connect: got.add}) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()

			cli := addrPort(t, c.do("connect %s", srv)[0])
			s.do("accept")
			otherCli := addrPort(t, c.do("connect %s", otherSrv)[0])
			other.do("accept")

			out := got.wait(t, cli, srv)
			if out.Accepted || out.PID != c.pid || out.Comm != c.name || out.Cgroup == 0 || out.NetNS == 0 {
				t.Errorf("client side: %+v, want connected by %d/%s", out, c.pid, c.name)
			}
			in := got.wait(t, srv, cli)
			if !in.Accepted || in.PID != s.pid || in.Comm != s.name {
				t.Errorf("server side: %+v, want accepted by %d/%s", in, s.pid, s.name)
			}
			time.Sleep(100 * time.Millisecond)
			got.mu.Lock()
			defer got.mu.Unlock()
			for _, x := range got.seen {
				if x.Local == otherCli || x.Remote == otherCli {
					t.Errorf("a connection to a port that is not ZooKeeper's was reported: %+v", x)
				}
			}
		})
	}
}

// Connect records nobody reads fill the ring buffer and are counted apart:
// the count of lost resets stays exact.
func TestUnreadConnectsAreNotLostResets(t *testing.T) {
	ln, _, tr := countingZK(t)
	// 64 KiB hold some 680 records; 400 connections write 800.
	for range 400 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
	}
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.ConnectsLost == 0 || st.Lost != 0 || st.Connects+st.ConnectsLost < 800 {
		t.Fatalf("stats %+v: want connect records dropped, counted apart from lost resets", st)
	}
}
