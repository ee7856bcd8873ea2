package ui

// Source is what the dashboard shows, read from the node's parts. The
// server calls it from its own goroutines (the hub once a second while a
// browser is connected, and request handlers); every method must be safe
// for concurrent use and return promptly, without waiting on the network.
// cmd/dagnode adapts the node's parts to it.
type Source interface {
	// Status is the node's summary: network, identity, DAG size and tips.
	Status() Status
	// Peers are the connected peers.
	Peers() []Peer
	// Net is the node's place on the network: reachability, addresses,
	// NAT traversal, bandwidth.
	Net() Net
	// Sync is the sync manager's state.
	Sync() Sync
	// Mining is the miner's state, the mined-block figures and gossip
	// counters.
	Mining() Mining
	// RecentBlocks returns up to n of the DAG's most recent blocks
	// (highest first is not required: the server orders them), with every
	// tip among them, for the picture drawn before any block arrives.
	RecentBlocks(n int) []Block
	// BlockDetails describes one block by its hash (hex); ok is false for
	// a malformed or unknown hash.
	BlockDetails(hash string) (d BlockDetails, ok bool)
}

// Colourer is implemented by a Source whose DAG orders its blocks
// (GHOSTDAG). Once a second while a browser is connected, the server asks
// it for the colours of the blocks drawn (a block's place on the selected
// chain changes as the chain moves) and sends those that changed. A Source
// without it leaves the blocks uncoloured, unless their Colour was set when
// published.
type Colourer interface {
	// Colours returns the colours of the blocks named by hashes, index for
	// index; the zero Colour for a block it does not know.
	Colours(hashes []string) []Colour
}

// Colour is a block's place in the DAG's order. Every field is optional:
// the zero value is an uncoloured block.
type Colour struct {
	// Blue is true for a blue block, false for a red one, nil while the DAG
	// does not colour its blocks.
	Blue *bool `json:"blue,omitempty"`
	// InChain reports that the block is on the selected chain.
	InChain bool `json:"inchain,omitempty"`
	// BlueScore is the number of blue blocks in the block's past.
	BlueScore uint64 `json:"bluescore,omitempty"`
}

// Block arrival sources (Block.Source).
const (
	SourceMined  = "mined"  // mined by this node
	SourceGossip = "gossip" // announced by a peer on the gossip topic
	SourceSync   = "sync"   // fetched from the sync peer in a session
	SourceStored = "stored" // in the DAG before the dashboard started
)

// Block is one block as the DAG panel draws it.
type Block struct {
	// Hash and Parents are hex hashes.
	Hash    string   `json:"hash"`
	Parents []string `json:"parents"`
	Height  int64    `json:"height"`
	// Time is the block's timestamp in Unix milliseconds.
	Time int64 `json:"time"`
	// Miner is the address credited with the block.
	Miner string `json:"miner"`
	// Source is how the block arrived: SourceMined, SourceGossip,
	// SourceSync or SourceStored; Peer the peer ID it came from, if any.
	Source string `json:"source"`
	Peer   string `json:"peer,omitempty"`
	// Arrived is when the node accepted it, in Unix milliseconds (0 for a
	// stored block).
	Arrived int64 `json:"arrived,omitempty"`
	Colour
}

// BlockDetails is what the node knows about one block, shown when it is
// clicked.
type BlockDetails struct {
	Block
	Children []string `json:"children"`
	// Bits is the compact difficulty target, in hex.
	Bits string `json:"bits"`
	// Nonce is decimal: a 64-bit integer is not exact in JavaScript.
	Nonce       string `json:"nonce"`
	PayloadSize int    `json:"payloadsize"`
	Size        int    `json:"size"`
}

// Status is the node's summary.
type Status struct {
	Network string `json:"network"`
	PeerID  string `json:"peerid"`
	Version string `json:"version"`
	// Started is when the node started, in Unix milliseconds.
	Started   int64    `json:"started"`
	Blocks    int      `json:"blocks"`
	MaxHeight int64    `json:"maxheight"`
	Tips      []string `json:"tips"`
}

// Peer is one connected peer.
type Peer struct {
	ID string `json:"id"`
	// Addr is the remote address of the connection shown.
	Addr      string `json:"addr"`
	Direction string `json:"direction"`
	Transport string `json:"transport"`
	// Relayed reports that every connection goes through a relay.
	Relayed bool   `json:"relayed"`
	Conns   int    `json:"conns"`
	Agent   string `json:"agent"`
	// LatencyMS is the ping round trip's moving average; 0 before the
	// first ping.
	LatencyMS float64 `json:"latencyms"`
	// ConnectedAt is in Unix milliseconds.
	ConnectedAt int64 `json:"connectedat"`
	BytesSent   int64 `json:"bytessent"`
	BytesRecv   int64 `json:"bytesrecv"`
	// Score is the misbehaviour score; Banned and BanUntil (Unix
	// milliseconds) a ban in force.
	Score    int   `json:"score"`
	Banned   bool  `json:"banned"`
	BanUntil int64 `json:"banuntil,omitempty"`
	// HasStatus reports that the peer announced its DAG status: Blocks,
	// MaxHeight and Tips are its figures.
	HasStatus bool  `json:"hasstatus"`
	Blocks    int   `json:"blocks"`
	MaxHeight int64 `json:"maxheight"`
	Tips      int   `json:"tips"`
	SyncPeer  bool  `json:"syncpeer"`
	// HolePunch is the peer's hole punch record, nil if none.
	HolePunch *HolePunch `json:"holepunch,omitempty"`
}

// HolePunch counts DCUtR upgrades of relayed connections.
type HolePunch struct {
	DirectDials uint64 `json:"directdials"`
	Started     uint64 `json:"started"`
	Succeeded   uint64 `json:"succeeded"`
	Failed      uint64 `json:"failed"`
	LastError   string `json:"lasterror,omitempty"`
}

// Net is the node's place on the network.
type Net struct {
	Reachability      string   `json:"reachability"`
	ReachabilityBasis string   `json:"reachabilitybasis"`
	DHTMode           string   `json:"dhtmode"`
	NAT               string   `json:"nat"`
	NATService        string   `json:"natservice"`
	RelayService      string   `json:"relayservice"`
	ListenAddrs       []string `json:"listenaddrs"`
	ObservedAddrs     []string `json:"observedaddrs"`
	RelayAddrs        []string `json:"relayaddrs"`
	DirectPeers       int      `json:"directpeers"`
	RelayedPeers      int      `json:"relayedpeers"`
	// HolePunch are the totals since start.
	HolePunch HolePunch `json:"holepunch"`
	// Bytes exchanged with all peers since start, and the current rates.
	BytesRecv uint64  `json:"bytesrecv"`
	BytesSent uint64  `json:"bytessent"`
	RateRecv  float64 `json:"raterecv"`
	RateSent  float64 `json:"ratesent"`
}

// Sync is the sync manager's state.
type Sync struct {
	Syncing  bool   `json:"syncing"`
	SyncPeer string `json:"syncpeer"`
	// Blocks is our block count, Target the sync peer's; Done the blocks
	// added in this session, at BlocksPerSecond.
	Blocks          int     `json:"blocks"`
	Target          int     `json:"target"`
	Done            int     `json:"done"`
	BlocksPerSecond float64 `json:"blockspersecond"`
	ETASeconds      float64 `json:"etaseconds"`
	Sessions        uint64  `json:"sessions"`
	Orphans         int     `json:"orphans"`
	OrphanBytes     int     `json:"orphanbytes"`
	OrphanFetches   int     `json:"orphanfetches"`
	// LastSession is how the last session ended; its Reason is empty
	// before the first.
	LastSession SyncSession `json:"lastsession"`
	// Backoffs counts peers not elected as sync peer for a while.
	Backoffs int `json:"backoffs"`
}

// SyncSession is how a sync session ended.
type SyncSession struct {
	Peer    string  `json:"peer"`
	Reason  string  `json:"reason"`
	Err     string  `json:"error,omitempty"`
	Blocks  int     `json:"blocks"`
	Seconds float64 `json:"seconds"`
	// At is in Unix milliseconds.
	At int64 `json:"at,omitempty"`
}

// Mining is the miner's state and the block and gossip counters.
type Mining struct {
	Generating      bool    `json:"generating"`
	Workers         int     `json:"workers"`
	HashesPerSecond float64 `json:"hashespersecond"`
	// BlocksMined counts the blocks this node mined that the DAG accepted
	// (getblockmetrics' blkgencount); SolveTimesMS are the solve times of
	// the most recent ones, oldest first (at most MaxSolveTimes).
	BlocksMined  uint64  `json:"blocksmined"`
	SolveTimesMS []int64 `json:"solvetimesms"`
	// Gossip counts the block topic's messages by validation result.
	Gossip Gossip `json:"gossip"`
}

// MaxSolveTimes bounds Mining.SolveTimesMS as sent to the page.
const MaxSolveTimes = 120

// Gossip counts block messages by validation result.
type Gossip struct {
	Accepted  uint64 `json:"accepted"`
	Rejected  uint64 `json:"rejected"`
	Ignored   uint64 `json:"ignored"`
	Duplicate uint64 `json:"duplicate"`
	Orphan    uint64 `json:"orphan"`
	Dropped   uint64 `json:"dropped"`
	MeshPeers int    `json:"meshpeers"`
}
