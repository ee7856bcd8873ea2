package ui

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// The event stream (GET /events, Server-Sent Events). Each stream starts
// with a "snapshot": the recent blocks, the panels and the stream's
// counters. Then come "block" (one accepted block, as it is accepted),
// "panels" (every Interval), "colours" (blocks whose colour changed) and,
// for a stream that fell behind, "resync": a snapshot to start again from.
//
// Blocks reach the hub through Publish, a non-blocking send; the hub
// encodes each event once and offers it to every stream's queue without
// waiting. A full queue drops the event, counts it, and marks the stream
// for a resync: its writer then discards what is queued and writes a fresh
// snapshot. A stalled browser therefore costs one queue and one goroutine
// blocked in a write for at most writeTimeout, never the node's time.

// event is one encoded server-sent event.
type event struct {
	name string
	data []byte
}

// client is one open stream.
type client struct {
	q    chan event
	wake chan struct{} // holds a token when a resync is due

	// Guarded by Server.mu.
	resync  bool // behind: events are not queued until the resync
	dropped uint64
	resyncs uint64
}

// snapshot is what a stream starts (or restarts) with.
type snapshot struct {
	Blocks    []Block         `json:"blocks"`
	MaxBlocks int             `json:"maxblocks"`
	Panels    json.RawMessage `json:"panels"`
	// Dropped and Resyncs are this stream's counters.
	Dropped uint64 `json:"dropped"`
	Resyncs uint64 `json:"resyncs"`
}

// panels is the periodic figures of every panel.
type panels struct {
	Time   int64  `json:"time"`
	Status Status `json:"status"`
	Peers  []Peer `json:"peers"`
	Net    Net    `json:"net"`
	Sync   Sync   `json:"sync"`
	Mining Mining `json:"mining"`
	// Arrivals count the blocks published since start, by source.
	Arrivals map[string]uint64 `json:"arrivals"`
	Stream   Stats             `json:"stream"`
}

// Publish hands the server a block the node accepted. It never blocks and
// does no work beyond a channel send: f runs later on the server's own
// goroutine (so describing the block costs the caller nothing), in the
// order of the calls. When the server has fallen inQueue blocks behind,
// the block is dropped (Stats.Lost) and every stream resyncs. Publish on a
// nil *Server does nothing.
func (s *Server) Publish(f func() Block) {
	if s == nil {
		return
	}
	select {
	case s.in <- f:
	default:
		s.lost.Add(1)
		s.inLost.Store(true)
	}
}

// seed fills the DAG picture from the Source: the blocks that were there
// before the server started.
func (s *Server) seed() {
	blocks := s.cfg.Source.RecentBlocks(s.cfg.MaxBlocks)
	slices.SortStableFunc(blocks, func(a, b Block) int {
		switch {
		case a.Height < b.Height:
			return -1
		case a.Height > b.Height:
			return 1
		}
		return 0
	})
	if len(blocks) > s.cfg.MaxBlocks {
		blocks = blocks[len(blocks)-s.cfg.MaxBlocks:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range blocks {
		if b.Source == "" {
			b.Source = SourceStored
		}
		s.ring.push(b)
	}
}

// hub takes published blocks and sends the periodic panels, until Close.
func (s *Server) hub() {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case f := <-s.in:
			s.addBlock(f())
		case <-t.C:
			s.tick()
		}
	}
}

// addBlock records a published block and offers it to every stream.
func (s *Server) addBlock(b Block) {
	if b.Arrived == 0 {
		b.Arrived = time.Now().UnixMilli()
	}
	data, err := json.Marshal(b)
	if err != nil {
		s.log.Error("ui: encoding a block", "hash", b.Hash, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resyncIfLostLocked()
	if !s.ring.push(b) {
		return // already drawn (published twice, or seeded and published)
	}
	s.sources[b.Source]++
	ev := event{"block", data}
	for c := range s.clients {
		s.offerLocked(c, ev)
	}
}

// resyncIfLostLocked sends every stream a resync after Publish dropped a
// block. Only called with s.mu held.
func (s *Server) resyncIfLostLocked() {
	if s.inLost.Swap(false) {
		for c := range s.clients {
			s.behindLocked(c)
		}
	}
}

// tick sends the panels and the colours that changed, if any stream is
// open.
func (s *Server) tick() {
	s.mu.Lock()
	s.resyncIfLostLocked()
	n := len(s.clients)
	var hashes []string
	colourer, colours := s.cfg.Source.(Colourer)
	if n > 0 && colours {
		hashes = s.ring.hashes()
	}
	s.mu.Unlock()
	if n == 0 {
		return
	}
	data := s.panels()
	var changed map[string]Colour
	if colours && len(hashes) > 0 {
		cs := colourer.Colours(hashes)
		s.mu.Lock()
		for i, h := range hashes {
			if i < len(cs) && s.ring.setColour(h, cs[i]) {
				if changed == nil {
					changed = make(map[string]Colour)
				}
				changed[h] = cs[i]
			}
		}
		s.mu.Unlock()
	}
	var cdata []byte
	if changed != nil {
		cdata, _ = json.Marshal(changed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		if cdata != nil {
			s.offerLocked(c, event{"colours", cdata})
		}
		s.offerLocked(c, event{"panels", data})
	}
}

// panels reads every panel's figures from the Source, encoded.
func (s *Server) panels() []byte {
	src := s.cfg.Source
	p := panels{
		Time:   time.Now().UnixMilli(),
		Status: src.Status(),
		Peers:  src.Peers(),
		Net:    src.Net(),
		Sync:   src.Sync(),
		Mining: src.Mining(),
		Stream: s.Stats(),
	}
	if p.Peers == nil {
		p.Peers = []Peer{}
	}
	if len(p.Mining.SolveTimesMS) > MaxSolveTimes {
		p.Mining.SolveTimesMS = p.Mining.SolveTimesMS[len(p.Mining.SolveTimesMS)-MaxSolveTimes:]
	}
	s.mu.Lock()
	p.Arrivals = make(map[string]uint64, len(s.sources))
	for k, v := range s.sources {
		p.Arrivals[k] = v
	}
	s.mu.Unlock()
	b, err := json.Marshal(p)
	if err != nil {
		s.log.Error("ui: encoding the panels", "err", err)
		return []byte("{}")
	}
	return b
}

// snapshotLocked is a stream's starting point. Only called with s.mu held,
// so that no block is both in it and queued after it, or in neither.
func (s *Server) snapshotLocked(panels []byte) snapshot {
	return snapshot{Blocks: s.ring.blocks(), MaxBlocks: s.cfg.MaxBlocks, Panels: panels}
}

// offerLocked queues ev for c without waiting. A full queue drops it and
// marks c for a resync. Only called with s.mu held.
func (s *Server) offerLocked(c *client, ev event) {
	if c.resync {
		c.dropped++
		s.dropped.Add(1)
		return
	}
	select {
	case c.q <- ev:
	default:
		c.dropped++
		s.dropped.Add(1)
		s.behindLocked(c)
	}
}

// behindLocked marks c for a resync and wakes its writer. Only called with
// s.mu held.
func (s *Server) behindLocked(c *client) {
	if c.resync {
		return
	}
	c.resync = true
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// maxBatch bounds the events written before one flush.
const maxBatch = 64

// serveEvents runs one event stream until the client leaves, a write
// fails or times out, or the server closes.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, ip string) {
	s.mu.Lock()
	full := len(s.clients) >= s.cfg.MaxClients
	s.mu.Unlock()
	if full {
		s.log.Debug("ui stream refused: too many streams", "remote", ip, "max", s.cfg.MaxClients)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "503 too many dashboard streams open", http.StatusServiceUnavailable)
		return
	}
	p := s.panels()
	c := &client{q: make(chan event, s.cfg.QueueLen), wake: make(chan struct{}, 1)}
	s.mu.Lock()
	if len(s.clients) >= s.cfg.MaxClients {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "5")
		http.Error(w, "503 too many dashboard streams open", http.StatusServiceUnavailable)
		return
	}
	s.clients[c] = struct{}{}
	snap := s.snapshotLocked(p)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
	}()
	s.log.Debug("ui stream opened", "remote", ip)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	write := func(evs ...event) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, ev := range evs {
			if _, err := w.Write(sseFrame(ev)); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	first, err := json.Marshal(snap)
	if err != nil || !write(event{"retry", nil}, event{"snapshot", first}) {
		return
	}
	batch := make([]event, 0, maxBatch)
	for {
		select {
		case <-r.Context().Done():
			s.log.Debug("ui stream closed", "remote", ip)
			return
		case <-s.quit:
			return
		case <-c.wake:
			s.mu.Lock()
			for len(c.q) > 0 {
				<-c.q
			}
			c.resync = false
			c.resyncs++
			s.resyncs.Add(1)
			snap := s.snapshotLocked(nil)
			snap.Dropped, snap.Resyncs = c.dropped, c.resyncs
			s.mu.Unlock()
			snap.Panels = s.panels()
			data, err := json.Marshal(snap)
			if err != nil || !write(event{"resync", data}) {
				return
			}
			s.log.Debug("ui stream resynced", "remote", ip, "dropped", snap.Dropped)
		case ev := <-c.q:
			batch = append(batch[:0], ev)
			for len(batch) < maxBatch && len(c.q) > 0 {
				batch = append(batch, <-c.q)
			}
			if !write(batch...) {
				s.log.Debug("ui stream write failed", "remote", ip)
				return
			}
		}
	}
}

// sseFrame encodes one event; "retry" sets the browser's reconnection
// delay. JSON has no raw newline, so one data line carries it.
func sseFrame(ev event) []byte {
	if ev.name == "retry" {
		return []byte("retry: 2000\n\n")
	}
	b := make([]byte, 0, len(ev.name)+len(ev.data)+16)
	b = append(b, "event: "...)
	b = append(b, ev.name...)
	b = append(b, "\ndata: "...)
	b = append(b, ev.data...)
	return append(b, "\n\n"...)
}

// ring is the DAG picture: the most recent blocks, in arrival order.
type ring struct {
	buf  []Block
	next int // once full: the oldest slot, overwritten next
	idx  map[string]int
}

func newRing(n int) ring {
	return ring{buf: make([]Block, 0, n), idx: make(map[string]int, n)}
}

// push adds b, evicting the oldest block when full; false if b is there.
func (r *ring) push(b Block) bool {
	if _, ok := r.idx[b.Hash]; ok {
		return false
	}
	if len(r.buf) < cap(r.buf) {
		r.idx[b.Hash] = len(r.buf)
		r.buf = append(r.buf, b)
		return true
	}
	delete(r.idx, r.buf[r.next].Hash)
	r.buf[r.next] = b
	r.idx[b.Hash] = r.next
	r.next = (r.next + 1) % len(r.buf)
	return true
}

func (r *ring) get(hash string) (Block, bool) {
	i, ok := r.idx[hash]
	if !ok {
		return Block{}, false
	}
	return r.buf[i], true
}

// blocks returns a copy, oldest first.
func (r *ring) blocks() []Block {
	out := make([]Block, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

func (r *ring) hashes() []string {
	out := make([]string, len(r.buf))
	for i, b := range r.buf {
		out[i] = b.Hash
	}
	return out
}

// setColour sets a block's colour; true if it changed.
func (r *ring) setColour(hash string, c Colour) bool {
	i, ok := r.idx[hash]
	if !ok {
		return false
	}
	old := r.buf[i].Colour
	if old.InChain == c.InChain && old.BlueScore == c.BlueScore &&
		(old.Blue == nil) == (c.Blue == nil) && (old.Blue == nil || *old.Blue == *c.Blue) {
		return false
	}
	r.buf[i].Colour = c
	return true
}
