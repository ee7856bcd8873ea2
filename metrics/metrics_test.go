package metrics

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBlockMined(t *testing.T) {
	m := New()
	empty := m.BlockMetrics()
	if empty.BlkGenCount != 0 || empty.BlkHashes == nil || len(empty.BlkHashes) != 0 ||
		empty.BlkGenTimes == nil || len(empty.BlkGenTimes) != 0 {
		t.Fatalf("fresh manager snapshot = %+v, want zero count and empty non-nil lists", empty)
	}

	m.BlockMined("aa", 1500*time.Millisecond)
	m.BlockMined("bb", 20*time.Microsecond) // rounds down to 0 ms
	m.BlockMined("cc", 3*time.Second+999*time.Microsecond)

	got := m.BlockMetrics()
	want := BlockMetrics{
		BlkGenCount: 3,
		BlkHashes:   []string{"aa", "bb", "cc"},
		BlkGenTimes: []int64{1500, 0, 3000},
	}
	if got.BlkGenCount != want.BlkGenCount || !slices.Equal(got.BlkHashes, want.BlkHashes) ||
		!slices.Equal(got.BlkGenTimes, want.BlkGenTimes) {
		t.Fatalf("BlockMetrics() = %+v, want %+v", got, want)
	}

	// The snapshot is a copy: changing it or mining more leaves it alone.
	got.BlkHashes[0] = "changed"
	got.BlkGenTimes[0] = -1
	m.BlockMined("dd", time.Millisecond)
	again := m.BlockMetrics()
	if again.BlkHashes[0] != "aa" || again.BlkGenTimes[0] != 1500 {
		t.Fatalf("snapshot shares memory with the manager: %+v", again)
	}
	if len(got.BlkHashes) != 3 || got.BlkGenCount != 3 {
		t.Fatalf("earlier snapshot changed after BlockMined: %+v", got)
	}
}

func TestBlockMetricsJSON(t *testing.T) {
	m := New()
	b, err := json.Marshal(m.BlockMetrics())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"blkgencount":0,"blkhashes":[],"blkgentimes":[]}`; string(b) != want {
		t.Fatalf("empty JSON = %s, want %s", b, want)
	}
	m.BlockMined("00ff", 42*time.Millisecond)
	b, err = json.Marshal(m.BlockMetrics())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"blkgencount":1,"blkhashes":["00ff"],"blkgentimes":[42]}`; string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
}

// TestBlockMetricsJSONCached: the encoded snapshot is what json.Marshal
// gives, is reused until a block is mined, and then follows the change.
func TestBlockMetricsJSONCached(t *testing.T) {
	m := New()
	for i := range 3 {
		first := m.BlockMetricsJSON()
		want, err := json.Marshal(m.BlockMetrics())
		if err != nil {
			t.Fatal(err)
		}
		if string(first) != string(want) {
			t.Fatalf("round %d: BlockMetricsJSON %s, want %s", i, first, want)
		}
		if again := m.BlockMetricsJSON(); &again[0] != &first[0] {
			t.Fatalf("round %d: encoded again without a change", i)
		}
		m.BlockMined(fmt.Sprintf("%064x", i), time.Duration(i)*time.Millisecond)
		if after := m.BlockMetricsJSON(); string(after) == string(first) {
			t.Fatalf("round %d: a mined block did not change the JSON %s", i, after)
		}
	}
	var nilM *Manager
	if got := string(nilM.BlockMetricsJSON()); got != `{"blkgencount":0,"blkhashes":[],"blkgentimes":[]}` {
		t.Fatalf("nil manager: %s", got)
	}
}

func TestBlockMetricsBound(t *testing.T) {
	// Exactly full, just over, and wrapped round the ring more than once.
	for _, total := range []int{MaxBlockMetrics - 1, MaxBlockMetrics, MaxBlockMetrics + 123, 2*MaxBlockMetrics + 7} {
		t.Run(strconv.Itoa(total), func(t *testing.T) {
			m := New()
			for i := range total {
				m.BlockMined(fmt.Sprintf("h%d", i), time.Duration(i)*time.Millisecond)
			}
			s := m.BlockMetrics()
			if s.BlkGenCount != uint64(total) {
				t.Fatalf("BlkGenCount = %d, want %d", s.BlkGenCount, total)
			}
			kept := min(total, MaxBlockMetrics)
			if len(s.BlkHashes) != kept || len(s.BlkGenTimes) != kept {
				t.Fatalf("kept %d hashes and %d times, want %d", len(s.BlkHashes), len(s.BlkGenTimes), kept)
			}
			first := total - kept
			for j := range kept {
				i := first + j
				if s.BlkHashes[j] != fmt.Sprintf("h%d", i) || s.BlkGenTimes[j] != int64(i) {
					t.Fatalf("entry %d = (%s, %d), want (h%d, %d)", j, s.BlkHashes[j], s.BlkGenTimes[j], i, i)
				}
			}
		})
	}
}

func TestNilManager(t *testing.T) {
	var m *Manager
	m.BlockMined("aa", time.Second) // must not panic
	s := m.BlockMetrics()
	if s.BlkGenCount != 0 || len(s.BlkHashes) != 0 || len(s.BlkGenTimes) != 0 {
		t.Fatalf("nil manager snapshot = %+v, want empty", s)
	}

	// The usual way a nil manager arrives: inside a consumer's interface.
	var r interface {
		BlockMined(hash string, solveTime time.Duration)
	} = m
	r.BlockMined("bb", time.Second)
}

func TestConcurrent(t *testing.T) {
	const writers, perWriter = 8, 500 // 4000 blocks: all are kept
	m := New()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readerErr := make(chan string, 2)
	for range 2 {
		readers.Go(func() {
			for {
				s := m.BlockMetrics()
				var enc BlockMetrics
				if err := json.Unmarshal(m.BlockMetricsJSON(), &enc); err != nil || len(enc.BlkHashes) != len(enc.BlkGenTimes) || uint64(len(enc.BlkHashes)) != enc.BlkGenCount {
					readerErr <- fmt.Sprintf("inconsistent encoded snapshot: %v, %+v", err, enc)
					return
				}
				if len(s.BlkHashes) != len(s.BlkGenTimes) || uint64(len(s.BlkHashes)) != s.BlkGenCount {
					readerErr <- fmt.Sprintf("inconsistent snapshot: count %d, %d hashes, %d times",
						s.BlkGenCount, len(s.BlkHashes), len(s.BlkGenTimes))
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				m.BlockMined(fmt.Sprintf("%d-%d", w, i), time.Duration(w)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(readerErr)
	for e := range readerErr {
		t.Fatal(e)
	}

	s := m.BlockMetrics()
	if s.BlkGenCount != writers*perWriter || len(s.BlkHashes) != writers*perWriter {
		t.Fatalf("count %d with %d hashes, want %d", s.BlkGenCount, len(s.BlkHashes), writers*perWriter)
	}
	// Each writer's blocks appear exactly once, in the order it mined them,
	// each with that writer's solve time.
	next := make([]int, writers)
	for j, h := range s.BlkHashes {
		ws, is, ok := strings.Cut(h, "-")
		if !ok {
			t.Fatalf("unexpected hash %q", h)
		}
		w, _ := strconv.Atoi(ws)
		i, _ := strconv.Atoi(is)
		if i != next[w] {
			t.Fatalf("writer %d: block %d listed where %d was expected", w, i, next[w])
		}
		next[w]++
		if s.BlkGenTimes[j] != int64(w) {
			t.Fatalf("hash %s has time %d, want %d", h, s.BlkGenTimes[j], w)
		}
	}
}

func BenchmarkBlockMined(b *testing.B) {
	m := New()
	const hash = "00000000000000000000000000000000000000000000000000000000deadbeef"
	b.ReportAllocs()
	for b.Loop() {
		m.BlockMined(hash, 1234*time.Millisecond)
	}
}
