package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/dagnode/dagnode"

// TestDependencyDirections keeps the import directions of ARCHITECTURE.md:
// dag, keys and metrics import nothing else of ours (but the
// standard-library-only leaves internal/securefile and internal/connlimit), dag and miner import nothing
// networked, miner sees only dag.
func TestDependencyDirections(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	rules := []struct {
		pkg       string
		allowOurs []string
		networked bool
	}{
		{pkg: "dag", networked: false},
		{pkg: "keys", allowOurs: []string{"internal/securefile"}, networked: true}, // libp2p's core/crypto key types
		{pkg: "metrics", allowOurs: []string{"internal/connlimit"}, networked: false},
		{pkg: "miner", allowOurs: []string{"dag"}, networked: false},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", module+"/"+r.pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", r.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if rest, ok := strings.CutPrefix(dep, module+"/"); ok && rest != r.pkg {
				allowed := false
				for _, a := range r.allowOurs {
					allowed = allowed || rest == a
				}
				if !allowed {
					t.Errorf("%s imports %s", r.pkg, rest)
				}
			}
			if !r.networked && (strings.HasPrefix(dep, "github.com/libp2p/") || strings.HasPrefix(dep, "github.com/multiformats/")) {
				t.Errorf("%s imports networking package %s", r.pkg, dep)
			}
		}
	}
}
