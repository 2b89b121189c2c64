// Package zk knows ZooKeeper: it asks servers what they are with the safe
// four-letter words (or the AdminServer when a word is refused), finds
// ZooKeeper servers and client libraries on this host through /proc, and
// turns a TCP reset on a ZooKeeper connection into a verdict that says what
// was measured and what was inferred.
//
// It never imports the eBPF side: everything here works on event.Event and
// can be tested without root.
package zk
