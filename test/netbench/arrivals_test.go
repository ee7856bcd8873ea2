package netbench

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// arrivals records, per node, when each message (a block hash, or a bare
// message id) was published there and when it first arrived there.
type arrivals struct {
	mu        sync.Mutex
	published []map[string]time.Time
	arrived   []map[string]time.Time
}

func newArrivals(n int) *arrivals {
	a := &arrivals{published: make([]map[string]time.Time, n), arrived: make([]map[string]time.Time, n)}
	for i := range n {
		a.published[i], a.arrived[i] = map[string]time.Time{}, map[string]time.Time{}
	}
	return a
}

// first records t under id in m unless an earlier time is there.
func first(m map[string]time.Time, id string, t time.Time) {
	if old, ok := m[id]; !ok || t.Before(old) {
		m[id] = t
	}
}

func (a *arrivals) publish(node int, id string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	first(a.published[node], id, t)
}

func (a *arrivals) arrive(node int, id string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	first(a.arrived[node], id, t)
}

// missing returns "id@node" for every message of ids (published at the
// matching node of origins) that has not arrived at some other node yet.
func (a *arrivals) missing(ids []string, origins []int) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k, id := range ids {
		for node := range a.arrived {
			if node == origins[k] {
				continue
			}
			if _, ok := a.arrived[node][id]; !ok {
				out = append(out, fmt.Sprintf("%.12s@n%02d", id, node))
			}
		}
	}
	return out
}

// waitAll polls until every message has reached every node or the deadline
// passes, and returns what is still missing.
func (a *arrivals) waitAll(ids []string, origins []int, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		m := a.missing(ids, origins)
		if len(m) == 0 || time.Now().After(deadline) {
			return m
		}
		time.Sleep(50 * time.Millisecond) // polling the log readers' records
	}
}

// delays returns arrival minus publication for every message at every node
// but its origin. A message whose publication was not logged takes fallback's
// time (the moment its publisher's call returned) and is counted.
func (a *arrivals) delays(ids []string, origins []int, fallback map[string]time.Time) (ds []time.Duration, fellBack int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, id := range ids {
		start, ok := a.published[origins[k]][id]
		if !ok {
			start, fellBack = fallback[id], fellBack+1
		}
		for node := range a.arrived {
			if t, ok := a.arrived[node][id]; ok && node != origins[k] {
				ds = append(ds, t.Sub(start))
			}
		}
	}
	return ds, fellBack
}

// percentile returns the p-th quantile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
