package rpc

import (
	"context"
	"fmt"
	"time"

	"github.com/dagnode/dagnode/dag"
)

// PeerSource is the peer tracker and connector, with peers named by their
// libp2p IDs and multiaddrs in text form (so this package needs no libp2p).
// An adapter wraps ErrInvalidPeerID, ErrInvalidAddress, ErrPeerNotFound and
// ErrNodeNotAdded with %w so the client gets the right code.
type PeerSource interface {
	// Peers are the connected peers.
	Peers() []PeerInfo
	// Disconnect closes every connection to a peer.
	Disconnect(id string) error
	// Ban bans a peer for d (and disconnects it); Unban lifts a ban.
	Ban(id string, d time.Duration, reason string) error
	Unban(id string) error
	// Banned lists the bans in force.
	Banned() []BanInfo
	// Connect dials a multiaddr (with /p2p/<id>) once; AddPersistent dials
	// it and keeps redialing it; RemovePersistent stops that.
	Connect(ctx context.Context, addr string) error
	AddPersistent(ctx context.Context, addr string) error
	RemovePersistent(addr string) error
	// Ping pings every connected peer at once and returns when all have
	// answered or failed, or ctx ends.
	Ping(ctx context.Context) []PingResult
}

// PeerInfo describes a connected peer.
type PeerInfo struct {
	ID string
	// Num is the peer's connection number, btcd's numeric peer id: given
	// when the peer connects, increasing, new when it reconnects.
	Num int32
	// Addrs are the remote multiaddrs of all current connections.
	Addrs []string
	// Direction is "inbound" or "outbound" (of the connection shown).
	Direction string
	// Transport is "tcp", "quic", "relay", ...; Relayed is true when every
	// connection goes through a relay.
	Transport string
	Relayed   bool
	// Conns are all current connections, direct ones first.
	Conns []ConnInfo
	// HolePunch is what hole punching did with the peer, nil if nothing.
	HolePunch *PeerHolePunch
	// Agent and ProtocolVersion come from identify.
	Agent           string
	ProtocolVersion string
	// Latency is the moving average of ping round trips (0: not yet).
	Latency     time.Duration
	ConnectedAt time.Time
	BytesSent   int64
	BytesRecv   int64
	// Score is the misbehaviour score; Banned and BanUntil a ban in force.
	Score    int
	Banned   bool
	BanUntil time.Time
	// Status is the DAG status the peer announced, nil before that.
	Status *dag.Status
	// SyncPeer reports that we sync from this peer.
	SyncPeer bool
}

// ConnInfo is one connection to a peer.
type ConnInfo struct {
	Addr      string `json:"addr"`
	Direction string `json:"direction"`
	Transport string `json:"transport"`
	Relayed   bool   `json:"relayed"`
}

// PeerHolePunch is what hole punching did with one peer.
type PeerHolePunch struct {
	DirectDials int    `json:"directdials"`
	Started     int    `json:"started"`
	Succeeded   int    `json:"succeeded"`
	Failed      int    `json:"failed"`
	LastTime    int64  `json:"lasttime,omitempty"`
	LastMillis  int64  `json:"lastmillis"`
	LastError   string `json:"lasterror,omitempty"`
}

// BanInfo describes a ban in force.
type BanInfo struct {
	ID     string
	Until  time.Time
	Reason string
}

// PingResult is one peer's answer to ping.
type PingResult struct {
	ID  string
	RTT time.Duration
	Err error
}

// NetInfo describes this node on the network.
type NetInfo interface {
	NetworkInfo() NetworkInfo
	NetTotals() NetTotals
}

// NetworkInfo is this node's identity and reachability.
type NetworkInfo struct {
	PeerID string
	// ListenAddrs are full multiaddrs, ending in /p2p/<PeerID>.
	ListenAddrs []string
	// ObservedAddrs are our addresses as peers see them (identify).
	ObservedAddrs []string
	// Reachability is "public", "private" or "unknown": the host's verdict,
	// which its relay service, AutoRelay and DHT mode follow.
	Reachability string
	// ReachabilityBasis is where it comes from: "autonat-v2",
	// "autonat-v1", "forced" or "none".
	ReachabilityBasis string
	// ExternalAddrs are the operator's --externaladdr addresses.
	ExternalAddrs []string
	// DHTMode is "server" (answers DHT queries), "client" or "off".
	DHTMode string
	// ReachabilitySince is when Reachability last changed.
	ReachabilitySince time.Time
	// ReachabilityConfidence is AutoNAT's confidence, 0 to 3; -1 unknown.
	ReachabilityConfidence int
	// ReachableAddrs, UnreachableAddrs and UnknownAddrs are our public
	// addresses as AutoNAT v2 dial-backs classified them.
	ReachableAddrs, UnreachableAddrs, UnknownAddrs []string
	// NATTypeTCP and NATTypeUDP: "endpoint-independent", "endpoint-dependent"
	// or "unknown".
	NATTypeTCP, NATTypeUDP string
	// NAT describes port mapping, e.g. "upnp: mapped", "disabled".
	NAT string
	// NATService and RelayService say what the node offers others:
	// "serving", "idle: ..." or "off: ...".
	NATService, RelayService string
	// RelayAddrs are the circuit addresses reserved on relays.
	RelayAddrs []string
	// DirectPeers and RelayedPeers count peers by their best connection.
	DirectPeers, RelayedPeers int
	// HolePunch are the hole punch totals since start.
	HolePunch HolePunchStats
	// Protocols are the protocols this node speaks.
	Protocols []string
	// Agent is the identify agent version, e.g. "dagnode/1.0.0".
	Agent string
}

// HolePunchStats count DCUtR upgrades of relayed connections: direct dials
// that worked at once, and hole punches by outcome.
type HolePunchStats struct {
	DirectDials uint64 `json:"directdials"`
	Started     uint64 `json:"started"`
	Succeeded   uint64 `json:"succeeded"`
	Failed      uint64 `json:"failed"`
}

// NetTotals are the bytes exchanged with all peers since start.
type NetTotals struct {
	BytesRecv uint64
	BytesSent uint64
}

// Network limits.
const (
	// DefaultBanSeconds is ban's default duration: a day, as the tracker's.
	DefaultBanSeconds = 24 * 60 * 60
	// MaxBanSeconds bounds ban's duration: a year.
	MaxBanSeconds = 365 * 24 * 60 * 60
)

func netMethods() []*method {
	peerID := func() param { return reqString("peerid", "a libp2p peer ID, e.g. 12D3KooW...") }
	return []*method{
		{
			name: "getpeerinfo", category: "network",
			summary: "Returns the connected peers.",
			result: `[{"id": connection number (an integer given when the peer connects, increasing; btcd's), "peerid": libp2p peer ID, "addr", "addrs", "direction": inbound|outbound, "inbound", "transport", "relayed": only relayed connections, ` +
				`"connection": direct|relayed, "connections": [{"addr", "direction", "transport", "relayed"}], ` +
				`"holepunch": {"directdials", "started", "succeeded", "failed", "lasttime", "lastmillis", "lasterror"} if any, ` +
				`"subver": agent, "protocolversion", "bytessent", "bytesrecv", "conntime": unix seconds, ` +
				`"pingtime": latency in microseconds (btcd's unit), "currentheight": -1 before its status, "blocks", "banscore", "banned", "banuntil", "syncnode"}, ...]`,
			needs: partPeers,
			run:   (*Server).handleGetPeerInfo,
		},
		{
			name: "getconnectioncount", category: "network",
			summary: "Returns the number of connected peers.",
			result:  "an integer",
			needs:   partPeers,
			run:     (*Server).handleGetConnectionCount,
		},
		{
			name: "getnettotals", category: "network",
			summary: "Returns the bytes exchanged with peers since start.",
			result:  `{"totalbytesrecv", "totalbytessent", "timemillis"}`,
			needs:   partNet,
			run:     (*Server).handleGetNetTotals,
		},
		{
			name: "getnetworkinfo", category: "network",
			summary: "Returns this node's peer ID, addresses, reachability and protocols.",
			result: `{"version", "subversion", "network", "connections", "peerid", "listenaddrs": full /p2p/ multiaddrs, ` +
				`"observedaddrs", "reachability": public|private|unknown (AutoNAT), "reachabilityconfidence": 0-3 (-1 unknown), "reachabilitysince": unix seconds, ` +
				`"reachableaddrs", "unreachableaddrs", "unknownaddrs": public addresses by AutoNAT v2 dial-back, "nattype": {"tcp", "udp"}, ` +
				`"natstatus": port mapping, "natservice", "relayservice": serving|idle: ...|off: ..., "relayaddrs": /p2p-circuit reservations, ` +
				`"directpeers", "relayedpeers", "holepunch": {"directdials", "started", "succeeded", "failed"}, "protocols"}`,
			needs: partNet,
			run:   (*Server).handleGetNetworkInfo,
		},
		{
			name: "addnode", category: "network",
			params: []param{
				reqString("addr", "a multiaddr ending in /p2p/<peer ID>"),
				reqEnum("command", []string{"add", "remove", "onetry"}, "add: connect and keep reconnecting; remove: stop that; onetry: connect once"),
			},
			summary: "Connects to a peer, once or persistently, or forgets a persistent peer.",
			result:  "null",
			needs:   partPeers,
			run:     (*Server).handleAddNode,
		},
		{
			name: "disconnectnode", category: "network",
			params:  []param{peerID()},
			summary: "Closes the connections to a peer (it may reconnect: use ban to keep it out).",
			result:  "null",
			needs:   partPeers,
			run:     (*Server).handleDisconnectNode,
		},
		{
			name: "ban", category: "network",
			params:  []param{peerID(), optInt("seconds", int64(DefaultBanSeconds), 1, MaxBanSeconds, "how long the ban lasts")},
			summary: "Bans a peer: disconnects it and refuses its connections until the ban ends.",
			result:  "null",
			needs:   partPeers,
			run:     (*Server).handleBan,
		},
		{
			name: "unban", category: "network",
			params:  []param{peerID()},
			summary: "Lifts a ban.",
			result:  "null",
			needs:   partPeers,
			run:     (*Server).handleUnban,
		},
		{
			name: "listbanned", category: "network",
			summary: "Lists the bans in force.",
			result:  `[{"peerid", "banneduntil": unix seconds, "reason"}, ...]`,
			needs:   partPeers,
			run:     (*Server).handleListBanned,
		},
		{
			name: "ping", category: "network",
			summary: "Pings every connected peer and returns the round-trip times (soterd queues the pings and returns null; this waits for them).",
			result:  `[{"peerid", "pingtime": microseconds, "error": only if the ping failed}, ...]`,
			needs:   partPeers,
			run:     (*Server).handlePing,
		},
	}
}

// PeerInfoResult is one entry of getpeerinfo: btcd's and soterd's
// GetPeerInfoResult where the meaning is the same (id is their int32
// connection number; the libp2p peer ID is peerid), then libp2p's own.
type PeerInfoResult struct {
	ID              int32          `json:"id"`
	PeerID          string         `json:"peerid"`
	Addr            string         `json:"addr"`
	Addrs           []string       `json:"addrs"`
	Direction       string         `json:"direction"`
	Inbound         bool           `json:"inbound"`
	Transport       string         `json:"transport"`
	Relayed         bool           `json:"relayed"`
	Connection      string         `json:"connection"`
	Connections     []ConnInfo     `json:"connections"`
	HolePunch       *PeerHolePunch `json:"holepunch,omitempty"`
	SubVer          string         `json:"subver"`
	ProtocolVersion string         `json:"protocolversion"`
	BytesSent       uint64         `json:"bytessent"`
	BytesRecv       uint64         `json:"bytesrecv"`
	ConnTime        int64          `json:"conntime"`
	PingTime        float64        `json:"pingtime"`
	CurrentHeight   int64          `json:"currentheight"`
	Blocks          int            `json:"blocks"`
	BanScore        int            `json:"banscore"`
	Banned          bool           `json:"banned"`
	BanUntil        int64          `json:"banuntil,omitempty"`
	SyncNode        bool           `json:"syncnode"`
}

func (s *Server) handleGetPeerInfo(context.Context, args) (any, error) {
	peers := s.cfg.Peers.Peers()
	out := make([]PeerInfoResult, 0, len(peers))
	for _, p := range peers {
		r := PeerInfoResult{
			ID:              p.Num,
			PeerID:          p.ID,
			Addrs:           orEmpty(p.Addrs),
			Direction:       p.Direction,
			Inbound:         p.Direction == "inbound",
			Transport:       p.Transport,
			Relayed:         p.Relayed,
			Connection:      "direct",
			Connections:     orEmpty(p.Conns),
			HolePunch:       p.HolePunch,
			SubVer:          p.Agent,
			ProtocolVersion: p.ProtocolVersion,
			BytesSent:       uint64(max(p.BytesSent, 0)),
			BytesRecv:       uint64(max(p.BytesRecv, 0)),
			PingTime:        micros(p.Latency),
			BanScore:        p.Score,
			Banned:          p.Banned,
			SyncNode:        p.SyncPeer,
			CurrentHeight:   -1,
		}
		if p.Relayed {
			r.Connection = "relayed"
		}
		if len(p.Addrs) > 0 {
			r.Addr = p.Addrs[0]
		}
		if !p.ConnectedAt.IsZero() {
			r.ConnTime = p.ConnectedAt.Unix()
		}
		if p.Banned && !p.BanUntil.IsZero() {
			r.BanUntil = p.BanUntil.Unix()
		}
		if p.Status != nil {
			r.CurrentHeight = p.Status.MaxHeight
			r.Blocks = p.Status.Count
		}
		out = append(out, r)
	}
	return out, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (s *Server) handleGetConnectionCount(context.Context, args) (any, error) {
	return len(s.cfg.Peers.Peers()), nil
}

// NetTotalsResult is getnettotals' result (btcd's GetNetTotalsResult).
type NetTotalsResult struct {
	TotalBytesRecv uint64 `json:"totalbytesrecv"`
	TotalBytesSent uint64 `json:"totalbytessent"`
	TimeMillis     int64  `json:"timemillis"`
}

func (s *Server) handleGetNetTotals(context.Context, args) (any, error) {
	t := s.cfg.Net.NetTotals()
	return NetTotalsResult{TotalBytesRecv: t.BytesRecv, TotalBytesSent: t.BytesSent, TimeMillis: time.Now().UnixMilli()}, nil
}

// NetworkInfoResult is getnetworkinfo's result.
type NetworkInfoResult struct {
	Version       int64    `json:"version"`
	SubVersion    string   `json:"subversion"`
	Network       string   `json:"network"`
	Connections   int      `json:"connections"`
	PeerID        string   `json:"peerid"`
	ListenAddrs   []string `json:"listenaddrs"`
	ObservedAddrs []string `json:"observedaddrs"`
	Reachability  string   `json:"reachability"`
	// ReachabilityBasis: "autonat-v2", "autonat-v1", "forced" or "none".
	ReachabilityBasis string   `json:"reachabilitybasis"`
	ExternalAddrs     []string `json:"externaladdrs"`
	// DHTMode: "server", "client" or "off".
	DHTMode string `json:"dhtmode"`
	// ReachabilityConfidence is AutoNAT's, 0 to 3 (-1: unknown).
	ReachabilityConfidence int `json:"reachabilityconfidence"`
	// ReachabilitySince is a unix time.
	ReachabilitySince int64             `json:"reachabilitysince"`
	ReachableAddrs    []string          `json:"reachableaddrs"`
	UnreachableAddrs  []string          `json:"unreachableaddrs"`
	UnknownAddrs      []string          `json:"unknownaddrs"`
	NATType           map[string]string `json:"nattype"`
	NATStatus         string            `json:"natstatus"`
	NATService        string            `json:"natservice"`
	RelayService      string            `json:"relayservice"`
	RelayAddrs        []string          `json:"relayaddrs"`
	DirectPeers       int               `json:"directpeers"`
	RelayedPeers      int               `json:"relayedpeers"`
	HolePunch         HolePunchStats    `json:"holepunch"`
	Protocols         []string          `json:"protocols"`
}

func (s *Server) handleGetNetworkInfo(context.Context, args) (any, error) {
	ni := s.cfg.Net.NetworkInfo()
	v := parseVersion(s.cfg.Version)
	r := NetworkInfoResult{
		Version:                int64(v.Major)*1000000 + int64(v.Minor)*10000 + int64(v.Patch)*100,
		SubVersion:             ni.Agent,
		Network:                s.cfg.Chain.Params().Name,
		PeerID:                 ni.PeerID,
		ListenAddrs:            orEmpty(ni.ListenAddrs),
		ObservedAddrs:          orEmpty(ni.ObservedAddrs),
		Reachability:           ni.Reachability,
		ReachabilityBasis:      ni.ReachabilityBasis,
		ExternalAddrs:          orEmpty(ni.ExternalAddrs),
		DHTMode:                ni.DHTMode,
		ReachabilityConfidence: ni.ReachabilityConfidence,
		ReachableAddrs:         orEmpty(ni.ReachableAddrs),
		UnreachableAddrs:       orEmpty(ni.UnreachableAddrs),
		UnknownAddrs:           orEmpty(ni.UnknownAddrs),
		NATType:                map[string]string{"tcp": orUnknown(ni.NATTypeTCP), "udp": orUnknown(ni.NATTypeUDP)},
		NATStatus:              ni.NAT,
		NATService:             ni.NATService,
		RelayService:           ni.RelayService,
		RelayAddrs:             orEmpty(ni.RelayAddrs),
		DirectPeers:            ni.DirectPeers,
		RelayedPeers:           ni.RelayedPeers,
		HolePunch:              ni.HolePunch,
		Protocols:              orEmpty(ni.Protocols),
	}
	if !ni.ReachabilitySince.IsZero() {
		r.ReachabilitySince = ni.ReachabilitySince.Unix()
	}
	r.Reachability = orUnknown(r.Reachability)
	if s.cfg.Peers != nil {
		r.Connections = len(s.cfg.Peers.Peers())
	}
	return r, nil
}

func (s *Server) handleAddNode(ctx context.Context, a args) (any, error) {
	addr := a.str(0)
	var err error
	switch a.str(1) {
	case "add":
		err = s.cfg.Peers.AddPersistent(ctx, addr)
	case "remove":
		err = s.cfg.Peers.RemovePersistent(addr)
	case "onetry":
		err = s.cfg.Peers.Connect(ctx, addr)
	}
	if err != nil {
		return nil, toError(fmt.Errorf("addnode %s: %w", a.str(1), err), CodeMisc)
	}
	return nil, nil
}

func (s *Server) handleDisconnectNode(_ context.Context, a args) (any, error) {
	id := a.str(0)
	if !s.connected(id) {
		return nil, errorf(CodeInvalidParameter, "peer %q is not connected", truncate(id, 80))
	}
	if err := s.cfg.Peers.Disconnect(id); err != nil {
		return nil, toError(fmt.Errorf("disconnectnode: %w", err), CodeMisc)
	}
	return nil, nil
}

func (s *Server) connected(id string) bool {
	for _, p := range s.cfg.Peers.Peers() {
		if p.ID == id {
			return true
		}
	}
	return false
}

func (s *Server) handleBan(_ context.Context, a args) (any, error) {
	d := time.Duration(a.int(1)) * time.Second
	if err := s.cfg.Peers.Ban(a.str(0), d, "banned over RPC"); err != nil {
		return nil, toError(fmt.Errorf("ban: %w", err), CodeMisc)
	}
	return nil, nil
}

func (s *Server) handleUnban(_ context.Context, a args) (any, error) {
	id := a.str(0)
	banned := false
	for _, b := range s.cfg.Peers.Banned() {
		banned = banned || b.ID == id
	}
	if !banned {
		return nil, errorf(CodeInvalidParameter, "peer %q is not banned", truncate(id, 80))
	}
	if err := s.cfg.Peers.Unban(id); err != nil {
		return nil, toError(fmt.Errorf("unban: %w", err), CodeMisc)
	}
	return nil, nil
}

// BannedResult is one entry of listbanned.
type BannedResult struct {
	PeerID      string `json:"peerid"`
	BannedUntil int64  `json:"banneduntil"`
	Reason      string `json:"reason"`
}

func (s *Server) handleListBanned(context.Context, args) (any, error) {
	bans := s.cfg.Peers.Banned()
	out := make([]BannedResult, 0, len(bans))
	for _, b := range bans {
		out = append(out, BannedResult{PeerID: b.ID, BannedUntil: b.Until.Unix(), Reason: b.Reason})
	}
	return out, nil
}

// PingReply is one entry of ping's result.
type PingReply struct {
	PeerID   string  `json:"peerid"`
	PingTime float64 `json:"pingtime"`
	Error    string  `json:"error,omitempty"`
}

func (s *Server) handlePing(ctx context.Context, _ args) (any, error) {
	res := s.cfg.Peers.Ping(ctx)
	out := make([]PingReply, 0, len(res))
	for _, r := range res {
		p := PingReply{PeerID: r.ID, PingTime: micros(r.RTT)}
		if r.Err != nil {
			p.Error = r.Err.Error()
		}
		out = append(out, p)
	}
	return out, nil
}

// micros is d in microseconds, btcd's unit for ping times.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
