package main

import "testing"

func TestParseAndMet(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkImportGHOSTDAG/10000-2         	       4	      9533 ns/op	     39392 blocks/s	     69186 plain-blocks/s	         0.5694 ratio	        25.39 µs/block
BenchmarkImportGHOSTDAG/100000-2        	       1	     25168 ns/op	      7295 blocks/s	     11505 plain-blocks/s	         0.6340 ratio
PASS
`)
	res := parse(out)
	small, big := res["BenchmarkImportGHOSTDAG/10000"], res["BenchmarkImportGHOSTDAG/100000"]
	if small["blocks/s"] != 39392 || small["ratio"] != 0.5694 || small["µs/block"] != 25.39 || big["plain-blocks/s"] != 11505 {
		t.Fatalf("parsed %v", res)
	}
	for _, c := range []struct {
		ratio float64
		goal  string
		want  string
	}{{0.57, "≥ 0.7", "no"}, {0.8, "≥ 0.7", "yes"}, {1.1, "≤ 1.25", "yes"}, {2, "≤ 1.25", "no"}, {0, "≥ 0.7", ""}} {
		if got := met(c.ratio, c.goal); got != c.want {
			t.Errorf("met(%v, %q) = %q, want %q", c.ratio, c.goal, got, c.want)
		}
	}
}
