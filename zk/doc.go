// Package zk holds what rstwatch knows about ZooKeeper releases: how their
// version strings read and compare, and which releases carry
// ZOOKEEPER-1702. The work is done in its subpackages, each with one job:
//
//   - zk/wire talks to a server: four-letter words, the AdminServer, and the
//     parsers of their replies.
//   - zk/hostscan reads this host: ZooKeeper servers running here (/proc,
//     zoo.cfg), and the runtime and client library of a local process.
//   - zk/diagnose turns a reset on a ZooKeeper connection into a situation and
//     a verdict (one pure classification, one explanation), with the prober
//     and the enricher that gather what it needs.
//   - zk/zktest starts real and scripted servers for tests.
//
// None of them imports the eBPF side: everything works on event.Event and is
// tested without root.
package zk
