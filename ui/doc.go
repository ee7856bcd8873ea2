// Package ui is the node's web dashboard: an HTTP server, started by
// --ui host:port, that serves one page (HTML, CSS and JavaScript embedded
// with go:embed: nothing fetched from elsewhere, no build step) and a
// stream of Server-Sent Events that the page draws.
//
// # Panels
//
//   - DAG: the most recent blocks (Config.MaxBlocks, 300 by default), drawn
//     by hand in SVG as they are accepted: parents as edges, tips marked,
//     each block's miner and how it arrived (mined, gossip, sync, or
//     stored before the dashboard started). Blue and red blocks and the
//     selected chain are drawn when the Source gives them (Colour, and the
//     optional Colourer); until then blocks are uncoloured. A click shows a
//     block's details (GET /api/block?hash=).
//   - Peers: direction, transport, direct or relayed, latency, the peer's
//     DAG status, score and ban; the node's reachability, observed and
//     relay addresses and hole punch record.
//   - Sync: state, sync peer, progress, blocks/s, ETA, the orphan pool.
//   - Mining and metrics: hash rate, blocks mined, the solve times of the
//     last MaxSolveTimes mined blocks as a chart, gossip results,
//     bandwidth, and the stream's own counters.
//
// # Events
//
// GET /events streams "snapshot" first, then "block" for each block
// published (Server.Publish, fed by the node's block-accepted hook, not by
// polling), "panels" every Config.Interval (1 s), "colours" when blocks'
// colours change, and "resync" (a new snapshot) to a stream that fell
// behind. GET /api/snapshot answers the snapshot as one JSON document.
//
// # Access
//
// Every request is authenticated, the page's own files too: a random token
// made at Start and logged in the dashboard's URL (the "ui server
// listening" line: http://127.0.0.1:PORT/?token=...), exchanged on first
// use for an HttpOnly, SameSite=Strict session cookie named after the port
// (two nodes' dashboards on one host keep their own); or HTTP basic auth
// with the credentials of Config.Credentials (the node's RPC user and
// password, or its cookie). Secrets are compared as SHA-256 digests in
// constant time; failed logins are limited to 4 a second per IP (burst 8),
// beyond that 429, so the dashboard is no faster oracle for the RPC
// password than the RPC server. Without credentials: 401, and no data.
//
// A request that another web page could make a browser send is refused
// with 403: an Origin other than the server's own, a Sec-Fetch-Site other
// than same-origin or none (except a plain navigation to the page), and,
// on a loopback listener, a Host that is not a loopback name (DNS
// rebinding). The page's Content-Security-Policy allows its own files and
// origin only. Plain HTTP is served on loopback only: a non-loopback
// listen address needs Config.TLS (cmd/dagnode gives the RPC server's
// certificate), or Start refuses it.
//
// # Limits
//
// Config.MaxClients streams at once (16; more get 503); each has a queue
// of Config.QueueLen events (256). 64 connections at once, 32 from one IP
// (internal/connlimit). GET and HEAD only, 8 KiB of header, 5 s to send
// it, 10 s to read a request and to write each answer or each batch of
// events.
//
// # What this package must not do
//
// It must never make the node wait: Publish is a non-blocking send (a
// full queue drops and counts, Stats.Lost), and the hub offers each event
// to every stream without waiting (a full queue drops and counts,
// Stats.Dropped, and the stream gets a resync). It imports nothing of the
// node's parts: cmd/dagnode adapts them to Source. It fetches nothing
// from outside at run time, serves no file from disk, and logs remote
// events (refusals, failed logins, streams opening and closing) at Debug
// only. Its goroutines are the HTTP server's, the hub's and one per
// stream, all started by Start and ended by Close.
package ui
