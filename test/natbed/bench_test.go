package natbed

import (
	"testing"
	"time"

	"github.com/dagnode/dagnode/internal/netbed"
)

// BenchmarkHolePunch measures, per operation, how long a home node takes to
// reach another home node behind an endpoint-independent NAT: first through
// the public node's relay (the baseline: a relayed connection, measured in
// the same run), then directly after DCUtR. It reports both in ms and their
// ratio. Each operation drops the connection first (disconnectnode on both
// sides; the home nodes run without the DHT, whose rendezvous would
// reconnect them at once). Times are seen through RPC polled every 5 ms.
//
//	go test -run '^$' -bench HolePunch -benchtime 10x ./test/natbed/
func BenchmarkHolePunch(b *testing.B) {
	needBed(b)
	_, _, a, c, _, _, relayA := homePair(b, "bench", netbed.EndpointIndependent, "--nodht")
	poll := func(what string, cond func() (bool, string)) {
		deadline := time.Now().Add(punchDeadline)
		for {
			if ok, _ := cond(); ok {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: timed out", what)
			}
			time.Sleep(5 * time.Millisecond) // polling a process over RPC
		}
	}
	var relayed, direct time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.call(nil, "disconnectnode", a.peerID)
		a.call(nil, "disconnectnode", c.peerID)
		poll("disconnect", func() (bool, string) {
			_, ok1, _ := c.peer(a.peerID)
			_, ok2, _ := a.peer(c.peerID)
			return !ok1 && !ok2, ""
		})
		start := time.Now()
		c.mustCall(nil, "addnode", relayA, "onetry")
		poll("relayed", connected(c, a, ""))
		relayed += time.Since(start)
		poll("direct", connected(c, a, "direct"))
		direct += time.Since(start)
	}
	b.StopTimer()
	for _, d := range []*daemon{a, c} {
		if ni, err := d.netInfo(); err == nil {
			b.Logf("%s after %d ops: hole punch totals %+v", d.name, b.N, ni.HolePunch)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(relayed.Milliseconds())/n, "relayed-ms/op")
	b.ReportMetric(float64(direct.Milliseconds())/n, "direct-ms/op")
	b.ReportMetric(float64(direct)/float64(relayed), "direct/relayed")
}
