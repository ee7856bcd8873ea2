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
	// Orphans and OrphanBytes are the orphan pool's size; OrphanFetches the
	// orphan-parent fetches in flight.
	Orphans       int
	OrphanBytes   int
	OrphanFetches int
	// LastSession is how the last session ended (zero before the first).
	LastSession SessionEnd
	// Backoffs are the peers not elected as sync peer before their Until.
	Backoffs []SyncBackoff
}

// SessionEnd is how a sync session ended.
type SessionEnd struct {
	// Peer is the sync peer; Reason why the session ended (the sync
	// manager's End* values: "done", "stalled", "offense", "fault", ...),
	// Err the error behind it, if any.
	Peer, Reason, Err string
	// Blocks is the number of blocks the session added in Elapsed; At is
	// when it ended.
	Blocks  int
	Elapsed time.Duration
	At      time.Time
}

// SyncBackoff is a peer whose last Failures sessions failed, the last for
// Reason: it is not elected again before Until.
type SyncBackoff struct {
	Peer     string
	Until    time.Time
	Failures int
	Reason   string
}

func syncMethods() []*method {
	return []*method{
		{
			name: "getsyncinfo", category: "sync",
			summary: "Returns the sync state: whether the node is catching up, from whom, and how far it is.",
			result: `{"syncmode", "syncpeer", "blocks", "target", "progress": 0 to 1, "done", "blockspersec", ` +
				`"etaseconds", "sessions", "orphans", "orphanbytes", "orphanfetches", ` +
				`"lastsession": {"peer", "reason", "error", "blocks", "seconds", "time"} or null, ` +
				`"backoffs": [{"peer", "until", "failures", "reason"}]}`,
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
	// Orphans, OrphanBytes and OrphanFetches describe the orphan pool.
	Orphans       int `json:"orphans"`
	OrphanBytes   int `json:"orphanbytes"`
	OrphanFetches int `json:"orphanfetches"`
	// LastSession is nil before the first session ends.
	LastSession *SessionEndResult `json:"lastsession"`
	Backoffs    []BackoffResult   `json:"backoffs"`
}

// SessionEndResult is getsyncinfo's last session.
type SessionEndResult struct {
	Peer    string  `json:"peer"`
	Reason  string  `json:"reason"`
	Error   string  `json:"error,omitempty"`
	Blocks  int     `json:"blocks"`
	Seconds float64 `json:"seconds"`
	// Time is when the session ended, in Unix seconds.
	Time int64 `json:"time"`
}

// BackoffResult is a peer in getsyncinfo's backoffs.
type BackoffResult struct {
	Peer string `json:"peer"`
	// Until is when the peer may be elected again, in Unix seconds.
	Until    int64  `json:"until"`
	Failures int    `json:"failures"`
	Reason   string `json:"reason"`
}

func (s *Server) handleGetSyncInfo(context.Context, args) (any, error) {
	si := s.cfg.Sync.SyncInfo()
	progress := 1.0
	if si.Target > 0 && si.Blocks < si.Target {
		progress = float64(si.Blocks) / float64(si.Target)
	}
	res := SyncInfoResult{
		SyncMode:     si.Syncing,
		SyncPeer:     si.SyncPeer,
		Blocks:       si.Blocks,
		Target:       si.Target,
		Progress:     progress,
		Done:         si.Done,
		BlocksPerSec: si.BlocksPerSecond,
		ETASeconds:   si.ETA.Seconds(),
		Sessions:     si.Sessions,
		Orphans:      si.Orphans, OrphanBytes: si.OrphanBytes, OrphanFetches: si.OrphanFetches,
		Backoffs: []BackoffResult{},
	}
	if e := si.LastSession; e.Reason != "" {
		res.LastSession = &SessionEndResult{Peer: e.Peer, Reason: e.Reason, Error: e.Err, Blocks: e.Blocks,
			Seconds: e.Elapsed.Seconds(), Time: e.At.Unix()}
	}
	for _, b := range si.Backoffs {
		res.Backoffs = append(res.Backoffs, BackoffResult{Peer: b.Peer, Until: b.Until.Unix(), Failures: b.Failures, Reason: b.Reason})
	}
	return res, nil
}
