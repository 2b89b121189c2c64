package metrics

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
	"github.com/rstwatch/rstwatch/zk/diagnose"
	"github.com/rstwatch/rstwatch/zk/zktest"
)

// The verdict label comes from the real zk.Enricher probing a server that
// answers srvr like a real one of that version.
func TestVerdictFromEnricher(t *testing.T) {
	for _, tc := range []struct {
		srvr, want, version string
	}{
		{"3.4.6-srvr.txt", event.VerdictKnownBug, "3.4.6"},
		{"3.9.2-srvr.txt", event.VerdictNotKnownBug, "3.9.2"},
	} {
		t.Run(tc.srvr, func(t *testing.T) {
			reply, err := os.ReadFile("../../zk/wire/testdata/" + tc.srvr)
			if err != nil {
				t.Fatal(err)
			}
			f := zktest.ServeFake(t, zktest.Replies(map[string]string{"srvr": string(reply)}))
			e, err := diagnose.NewEnricher(context.Background(), diagnose.EnricherConfig{Servers: []string{f.Addr}})
			if err != nil {
				t.Fatal(err)
			}
			r := row(event.Send, "", 0, 3) // no owner: client library unknown
			r.Reason = "TCP_ABORT_ON_CLOSE"
			r.ZKEndpoint = netip.MustParseAddrPort(f.Addr)
			c := NewCollector(&fakeKernel{rows: []tracer.Count{r}}, Options{ZK: e, ProcRoot: t.TempDir()})
			out := scrape(t, c)
			want := `rstwatch_resets_total{container="",direction="send",namespace="",owner_comm="unknown",pod="",reason="TCP_ABORT_ON_CLOSE",unit="",verdict="` + tc.want + `",zk_endpoint="` + f.Addr + `"} 3`
			if !strings.Contains(out, want) {
				t.Errorf("want %s in\n%s", want, out)
			}
			info := `",version="` + tc.version + `"} 1`
			if !strings.Contains(out, `rstwatch_zk_server_info{endpoint="`+f.Addr+`",mode=`) || !strings.Contains(out, info) {
				t.Errorf("want %s… in\n%s", info, out)
			}
		})
	}
}
