package ui

import (
	"testing"
	"time"
)

// BenchmarkPublish is what the node's block-accepted hook pays per block
// with one browser connected: a non-blocking send (the describing closure
// runs on the hub). The hub's own cost is BenchmarkHubAddBlock.
func BenchmarkPublish(b *testing.B) {
	s := startServer(b, Config{})
	blk := Block{Hash: hashOf(1), Parents: []string{hashOf(0)}, Height: 1, Source: SourceGossip}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Publish(func() Block { return blk })
		if len(s.in) > inQueue/2 {
			b.StopTimer()
			for len(s.in) > 0 {
				time.Sleep(time.Millisecond) // let the hub catch up; not timed
			}
			b.StartTimer()
		}
	}
}

// BenchmarkHubAddBlock is the hub's work per block with four streams open:
// encode once, ring, offer to each queue.
func BenchmarkHubAddBlock(b *testing.B) {
	s, err := New(Config{Listen: "127.0.0.1:0", Source: newFakeSource(10), Logger: testLogger(b), QueueLen: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for range 4 {
		c := &client{q: make(chan event, 1<<20), wake: make(chan struct{}, 1)}
		s.clients[c] = struct{}{}
	}
	parents := []string{hashOf(0), hashOf(1), hashOf(2)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.addBlock(Block{Hash: hashOf(i + 100), Parents: parents, Height: int64(i), Source: SourceGossip, Miner: "mkS5LdQk8YyrxFCrBp4HFQvSX9jWJVqaGS"})
		i++
		if i%(1<<19) == 0 {
			for c := range s.clients {
				for len(c.q) > 0 {
					<-c.q
				}
			}
		}
	}
}
