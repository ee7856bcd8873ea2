package rpc

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the semantic version of this JSON-RPC API (the version
// method's "dagnodejsonrpcapi"): the minor number grows with new methods or
// fields, the major number with any incompatible change.
const APIVersion = "2.0.0"

func nodeMethods() []*method {
	return []*method{
		{
			name: "help", category: "control",
			params:  []param{optString("command", "a method name")},
			summary: "Lists every method with its params, or describes one method.",
			result:  "a string",
			run:     (*Server).handleHelp,
		},
		{
			name: "version", category: "control",
			summary: "Returns the versions of the JSON-RPC API and of the node.",
			result:  `{"dagnodejsonrpcapi": {"versionstring", "major", "minor", "patch", "prerelease", "buildmetadata"}, "dagnode": {...}}`,
			run:     (*Server).handleVersion,
		},
		{
			name: "getinfo", category: "control",
			summary: "Returns a summary of the node's state.",
			result: `{"version": node version as 1000000*major+10000*minor+100*patch, "blocks": blocks in the DAG (genesis included), ` +
				`"maxheight", "timeoffset": 0, "connections", "proxy": "", "difficulty": of the next block, ` +
				`"testnet": network is testnet, "network", "errors": ""}`,
			run: (*Server).handleGetInfo,
		},
		{
			name: "stop", category: "control",
			summary: "Shuts the node down.",
			result:  `"dagnode stopping."`,
			needs:   partStop,
			run:     (*Server).handleStop,
		},
		{
			name: "uptime", category: "control",
			summary: "Returns how long the node has been running.",
			result:  "seconds since start (integer)",
			run:     (*Server).handleUptime,
		},
	}
}

// VersionResult is one entry of the version method's result.
type VersionResult struct {
	VersionString string `json:"versionstring"`
	Major         uint32 `json:"major"`
	Minor         uint32 `json:"minor"`
	Patch         uint32 `json:"patch"`
	Prerelease    string `json:"prerelease"`
	BuildMetadata string `json:"buildmetadata"`
}

// parseVersion splits "1.2.3-pre+build" (a leading "v" is allowed); the
// numbers it cannot read stay zero.
func parseVersion(v string) VersionResult {
	r := VersionResult{VersionString: v}
	rest := strings.TrimPrefix(v, "v")
	rest, r.BuildMetadata, _ = strings.Cut(rest, "+")
	rest, r.Prerelease, _ = strings.Cut(rest, "-")
	nums := strings.SplitN(rest, ".", 3)
	dst := []*uint32{&r.Major, &r.Minor, &r.Patch}
	for i, n := range nums {
		if x, err := strconv.ParseUint(n, 10, 32); err == nil {
			*dst[i] = uint32(x)
		}
	}
	return r
}

func (s *Server) handleVersion(context.Context, args) (any, error) {
	return map[string]VersionResult{
		"dagnodejsonrpcapi": parseVersion(APIVersion),
		"dagnode":           parseVersion(s.cfg.Version),
	}, nil
}

// InfoResult is the result of getinfo (btcd's InfoChainResult, without
// what a DAG of blocks without transactions has no use for).
type InfoResult struct {
	Version     int64   `json:"version"`
	Blocks      int64   `json:"blocks"`
	MaxHeight   int64   `json:"maxheight"`
	TimeOffset  int64   `json:"timeoffset"`
	Connections int     `json:"connections"`
	Proxy       string  `json:"proxy"`
	Difficulty  float64 `json:"difficulty"`
	TestNet     bool    `json:"testnet"`
	Network     string  `json:"network"`
	Errors      string  `json:"errors"`
}

func (s *Server) handleGetInfo(context.Context, args) (any, error) {
	st := s.cfg.Chain.Status()
	v := parseVersion(s.cfg.Version)
	p := s.cfg.Chain.Params()
	r := InfoResult{
		Version:    int64(v.Major)*1000000 + int64(v.Minor)*10000 + int64(v.Patch)*100,
		Blocks:     int64(st.Count),
		MaxHeight:  st.MaxHeight,
		Difficulty: difficulty(s.cfg.Chain.Template().Bits, p),
		TestNet:    p.Name == "testnet",
		Network:    p.Name,
	}
	if s.cfg.Peers != nil {
		r.Connections = len(s.cfg.Peers.Peers())
	}
	return r, nil
}

func (s *Server) handleStop(context.Context, args) (any, error) {
	if s.stopCalled.CompareAndSwap(false, true) {
		s.log.Info("stop requested over RPC")
		s.cfg.Stop()
	}
	return "dagnode stopping.", nil
}

func (s *Server) handleUptime(context.Context, args) (any, error) {
	return int64(time.Since(s.started) / time.Second), nil
}
