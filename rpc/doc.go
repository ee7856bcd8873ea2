// Package rpc is the node's JSON-RPC server over HTTP POST, and the client
// that "dagnode rpc" uses. Method names and result shapes follow soterd where
// soterd has the method, and btcd's btcjson result types otherwise, so a
// btcd-family client (btcctl-style, basic auth) works unchanged for the
// methods both have.
//
// # Envelopes
//
// A body is one request object or a batch (an array of them, at most
// MaxBatchLength). Each request is either
//
//   - JSON-RPC 1.0 as btcd and Bitcoin Core speak it: "jsonrpc" absent or
//     "1.0". The response always has "result", "error" (null on success) and
//     "id" echoed byte for byte. A request without id is answered with id
//     null (Bitcoin Core's behaviour; btcd does not answer it).
//   - JSON-RPC 2.0: "jsonrpc":"2.0". The response has "jsonrpc", "id" and
//     either "result" or "error". A request without "id" is a notification:
//     it runs and gets no response; a batch of only notifications gets HTTP
//     204.
//
// Params are positional (an array) or named (an object, by the names help
// shows); omitted or null optional params take their defaults. A batch's
// responses come in request order, one per non-notification. JSON-RPC
// answers are HTTP 200 whatever the outcome; a body that is not JSON gets a
// -32700 error with id null in the 2.0 shape (which 1.0 clients read too).
//
// The envelope layer is written here, not taken from a library: the
// maintained Go JSON-RPC libraries speak 2.0 only (creachadair/jrpc2 removed
// its 1.0 tolerance in 2021 because replies still carried the 2.0 marker and
// shape; filecoin-project/go-jsonrpc is 2.0-only), and btcd clients need the
// 1.0 reply shape with "error":null. It is about two hundred lines
// (envelope.go); dispatch is table-driven (dispatch.go, one methods_*.go per
// topic).
//
// # Authentication
//
// Always on, HTTP basic auth: Config.User and Config.Pass, or when both are
// empty a cookie: Start writes "__cookie__:<64 hex digits>" (32 random bytes)
// to Config.CookiePath with mode 0600 (temporary file, then rename) and Close
// removes it; the local client reads it with ReadCookie. Credentials are
// compared as SHA-256 digests in constant time. A failure is answered 401
// after a delay that starts at Config.AuthFailDelay (250 ms) and doubles with
// each further failure from the same IP up to Config.AuthFailMaxDelay (2 s);
// a success or ten quiet minutes reset it. The delay is slept without any lock
// and only delays that request. Unauthenticated requests take no slot and
// are not read.
//
// # Limits
//
//   - body: Config.MaxBodyBytes (1 MiB); bigger gets HTTP 413 and -32600.
//   - batch: MaxBatchLength (1000) calls.
//   - time: one deadline per HTTP request, Config.RequestTimeout (30 s), or
//     Config.GenerateTimeout (10 min) if it calls generate; a call that runs
//     out of time gets -1 "request timed out". Close cancels every request.
//   - concurrency: Config.MaxConcurrent (16) requests run at once, up to
//     Config.MaxQueued (64) wait for a slot until their deadline, beyond
//     that HTTP 503 with Retry-After.
//   - HTTP: header read 10 s, body read 30 s, idle connections 2 min,
//     headers 16 KiB.
//   - listening: 127.0.0.1 on DefaultPort (mainnet 9710, testnet 9711,
//     simnet 9712, regtest 9713) unless Config.Listen says otherwise; a
//     non-loopback address is logged at Warn.
//
// # Methods
//
//	control  help ["command"], version, getinfo, stop, uptime
//	dag      getblockcount, getblockhash height, getblock "hash" (verbose=true),
//	         getblockheader "hash" (verbose=true), getdagtips, getbestblock,
//	         renderdag (heights=0), submitblock "hexblock"
//	mining   getblockmetrics, generate numblocks, setgenerate generate (genproclimit),
//	         getgenerate, gethashespersec, getmininginfo, getdifficulty
//	network  getpeerinfo, getconnectioncount, getnettotals, getnetworkinfo,
//	         addnode "addr" "add|remove|onetry", disconnectnode "peerid",
//	         ban "peerid" (seconds=86400), unban "peerid", listbanned, ping
//	sync     getsyncinfo
//
// help lists them with their params; help METHOD describes params and
// result. The parts of the node behind them are narrow interfaces declared
// next to their use (Chain, Submitter, Miner, BlockMetrics, PeerSource,
// NetInfo, SyncStatus); Chain is required, a nil part makes its methods
// answer -1 "... is not available". Peers are named by libp2p IDs and
// multiaddrs in text, so this package imports no networking.
//
// # Errors
//
//	-32700 parse error        body is not JSON
//	-32600 invalid request    not a request object, bad id or version, empty/oversize batch, oversize body
//	-32601 method not found
//	-32602 invalid params     wrong count, wrong JSON type, unknown named param
//	-32603 internal error     a failure in the node, a recovered handler panic
//	-1     misc               timeout, cancelled, miner busy, dial failed, part not available
//	-5     not found / key    block not found; malformed peer ID or multiaddr
//	-8     invalid parameter  out of range, not a hash, not a listed choice, peer not connected/banned
//	-22    deserialization    submitblock: not hex, not a block, too large
//	-24    node not added     addnode remove of a peer never added
//
// What this package must not do: write to the DAG (blocks go to the
// Submitter, the sync manager's path), import any package of this module but
// dag and metrics, answer without authentication, listen on a public
// interface unless configured to, panic or answer a stack trace on any
// input, or hold a lock while it sleeps.
package rpc
