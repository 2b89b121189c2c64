// Package measure reads what rstwatch-bench reports about a tracer: its CPU
// time and peak memory from /proc, the BPF programs it holds and their
// run-time statistics, and how many events reached its output (pcap
// records, lines, summaries). The parsers take readers or bytes so they are
// tested without root.
package measure
