package rpc

import (
	"context"
	"time"
)

// SyncStatus reports the sync manager's state.
type SyncStatus interface {
	SyncInfo() SyncInfo
}

// SyncInfo is the sync manager's state.
type SyncInfo struct {
	// Syncing is true in sync mode (catching up with a sync peer).
	Syncing bool
	// SyncPeer is the peer ID we sync from, empty if none.
	SyncPeer string
	// Blocks is our block count, Target the sync peer's.
	Blocks int
	Target int
	// Done is the blocks added since the session started, at
	// BlocksPerSecond on average.
	Done            int
	BlocksPerSecond float64
	// ETA estimates the time left.
	ETA time.Duration
	// Sessions counts sync sessions so far.
	Sessions uint64
}

func syncMethods() []*method {
	return []*method{
		{
			name: "getsyncinfo", category: "sync",
			summary: "Returns the sync state: whether the node is catching up, from whom, and how far it is.",
			result: `{"syncmode", "syncpeer", "blocks", "target", "progress": 0 to 1, "done", "blockspersec", ` +
				`"etaseconds", "sessions"}`,
			needs: partSync,
			run:   (*Server).handleGetSyncInfo,
		},
	}
}

// SyncInfoResult is getsyncinfo's result.
type SyncInfoResult struct {
	SyncMode     bool    `json:"syncmode"`
	SyncPeer     string  `json:"syncpeer"`
	Blocks       int     `json:"blocks"`
	Target       int     `json:"target"`
	Progress     float64 `json:"progress"`
	Done         int     `json:"done"`
	BlocksPerSec float64 `json:"blockspersec"`
	ETASeconds   float64 `json:"etaseconds"`
	Sessions     uint64  `json:"sessions"`
}

func (s *Server) handleGetSyncInfo(context.Context, args) (any, error) {
	si := s.cfg.Sync.SyncInfo()
	progress := 1.0
	if si.Target > 0 && si.Blocks < si.Target {
		progress = float64(si.Blocks) / float64(si.Target)
	}
	return SyncInfoResult{
		SyncMode:     si.Syncing,
		SyncPeer:     si.SyncPeer,
		Blocks:       si.Blocks,
		Target:       si.Target,
		Progress:     progress,
		Done:         si.Done,
		BlocksPerSec: si.BlocksPerSecond,
		ETASeconds:   si.ETA.Seconds(),
		Sessions:     si.Sessions,
	}, nil
}
