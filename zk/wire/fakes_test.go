package wire

import (
	"strconv"
	"testing"

	"github.com/rstwatch/rstwatch/zk/zktest"
)

// fake34 answers every word the way 3.4.6 does (no whitelist).
func fake34(t testing.TB) *zktest.Fake {
	return zktest.ServeFake(t, zktest.Replies(map[string]string{
		"srvr": string(readTestdata(t, "3.4.6-srvr.txt")),
		"stat": string(readTestdata(t, "3.4.6-stat.txt")),
		"cons": string(readTestdata(t, "3.4.6-cons.txt")),
		"envi": "Environment:\nzookeeper.version=3.4.6-1569965, built on 02/20/2014 09:09 GMT\nhost.name=zk1\njava.version=1.7.0_80\n",
		"mntr": "zk_version\t3.4.6-1569965, built on 02/20/2014 09:09 GMT\nzk_avg_latency\t0\nzk_server_state\tfollower\n",
		"conf": "clientPort=2181\ndataDir=/var/lib/zookeeper/version-2\ntickTime=2000\nmaxClientCnxns=60\n",
		"ruok": "imok",
		"isro": "rw",
	}))
}

// fake353 is a 3.5.3 with the default whitelist: srvr only.
func fake353(t testing.TB) *zktest.Fake {
	refused := func(w string) string { return w + " is not executed because it is not in the whitelist.\n" }
	m := map[string]string{"srvr": "Zookeeper version: 3.5.3-beta-8ce24f9e675cbefffb8f21a47e06b42864475a60, built on 04/03/2017 16:19 GMT\nLatency min/avg/max: 0/2/26\nReceived: 9\nSent: 8\nConnections: 1\nOutstanding: 0\nZxid: 0x200000002\nMode: leader\nNode count: 5\nProposal sizes last/min/max: 36/32/48\n"}
	for _, w := range []string{"stat", "cons", "envi", "mntr", "conf", "ruok", "isro"} {
		m[w] = refused(w)
	}
	return zktest.ServeFake(t, zktest.Replies(m))
}

func itoa(n int) string { return strconv.Itoa(n) }
