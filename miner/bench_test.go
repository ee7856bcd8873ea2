package miner_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
)

// BenchmarkWorkerVsBareHash compares one mining worker's hash rate with a bare
// loop of the same hash function over a header of the same size, measured in
// the same run and interleaved so machine noise hits both alike. Each
// iteration runs each side for benchSlice. Reported: hashes/s of each and
// their ratio (goal >= 0.9).
func BenchmarkWorkerVsBareHash(b *testing.B) {
	const benchSlice = 300 * time.Millisecond
	p := dag.RegTestParams
	hdr := dag.Header{Version: dag.BlockVersion, Net: p.Net, Parents: []dag.Hash{p.GenesisHash}, Bits: 0x01010000}
	raw := hdr.AppendEncode(nil)
	nonceAt := len(raw) - dag.NonceOffsetFromEnd
	target, _ := dag.TargetFromBits(hdr.Bits)

	f := newFakeDAG()
	m := newMiner(b, f, func(context.Context, *dag.Block) error { return nil }, nil)
	var bareHashes, workerHashes uint64
	var bareTime, workerTime time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var n uint64
		for time.Since(start) < benchSlice {
			for range 4096 {
				binary.LittleEndian.PutUint64(raw[nonceAt:], n)
				h := dag.DoubleSHA256(raw)
				if dag.MeetsTarget(&h, &target) {
					b.Fatal("met an unmeetable target")
				}
				n++
			}
		}
		bareTime += time.Since(start)
		bareHashes += n

		before := m.Stats().Hashes
		start = time.Now()
		if err := m.SetGenerate(true, 1); err != nil {
			b.Fatal(err)
		}
		time.Sleep(benchSlice) // the measured interval
		if err := m.SetGenerate(false, 0); err != nil {
			b.Fatal(err)
		}
		workerTime += time.Since(start)
		workerHashes += m.Stats().Hashes - before
	}
	bare := float64(bareHashes) / bareTime.Seconds()
	worker := float64(workerHashes) / workerTime.Seconds()
	b.ReportMetric(bare, "bare-hashes/s")
	b.ReportMetric(worker, "worker-hashes/s")
	b.ReportMetric(worker/bare, "ratio")
}

// BenchmarkGenerateRegtest measures Generate on regtest into an on-disk DAG:
// what one accepted block costs end to end (template, solve, validate, one
// disk sync).
func BenchmarkGenerateRegtest(b *testing.B) {
	d := diskDAG(b, dag.RegTestParams)
	m := newMiner(b, d, d.ProcessBlock, nil)
	if err := m.SetGenerate(false, 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if _, err := m.Generate(context.Background(), b.N); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "blocks/s")
}
