// Package rpc is the node's JSON-RPC server over HTTP POST, and the client
// that "dagnode rpc" uses.
//
// # Compatibility
//
// Method names follow soterd, and results decode into the result types of
// soterd's typed client (its soterjson, a fork of btcd's btcjson) and of
// btcd's for every method dagnode shares with them: each field with the
// same meaning has their key and a JSON type their Go type accepts, fields
// a DAG node lacks (merkleroot, services, ...) are absent, and dagnode's own
// fields come beside them under other keys (compat_test.go holds copies of
// those types and decodes every such reply). The exceptions are named:
// getpeerinfo's "id" is btcd's int32 connection number (given when the peer
// connects, increasing), the libp2p peer ID being "peerid"; getblock's
// "parents" are soterd's objects, of which only "hash" is sent, and
// getblockheader uses the same shape; "nonce" is absent, because dagnode's
// is 64 bits and btcd-family clients decode "nonce" as a uint32 (getblock):
// it is "nonce64", a decimal string; ping answers its round trips where
// soterd answers null (btcd-family clients ignore ping's result). No result holds a JSON integer beyond
// 2^53-1, which JavaScript and most JSON libraries read inexactly: such
// values are strings (nonce64, chainwork and totalwork in hex).
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
// and only delays that request. Until it has passed, further requests from
// that IP get HTTP 429 with Retry-After and no credential check, whatever
// they carry; after it, one request is checked per delay window, so many
// parallel connections guess no faster than one client. Unauthenticated
// requests take no slot and are not read.
//
// # Transport
//
// TLS (Config.TLS): TLSAuto, the default, serves TLS whenever a listen
// address is not loopback (the password would cross the network in clear),
// and plain HTTP on loopback only; TLSOn serves TLS everywhere; TLSOff
// serves plain HTTP everywhere, logged at Warn at every start for a
// non-loopback address. The key pair is Config.CertPath and Config.KeyPath
// (the node's <datadir>/rpc.cert and rpc.key): created on first use with
// LoadOrCreateCert (ECDSA P-256, self-signed, valid 10 years, for
// localhost, the loopback addresses, the host name, every interface
// address and the listen hosts; mode 0600), then reused; one file without
// the other, or a pair that does not match, is an error. Clients pin that
// certificate (TLSClientConfig, NewTLSClient; a btcd-family client with
// --rpccert). TLS 1.2 at least.
//
// Browsers: a request with an Origin header is refused (HTTP 403) unless
// the origin is in Config.AllowedOrigins; on a loopback listener, a Host
// header that is not localhost or a loopback address is refused (a page
// whose DNS name was rebound to 127.0.0.1).
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
//   - reply: Config.MaxReplyBytes (DefaultMaxReplyBytes, 32 MiB) per HTTP
//     request; the call that would pass it and every later call of the
//     batch get -1 "reply too large" (those later calls are not run).
//   - a client that goes away: the rest of its batch is not run.
//   - connections: Config.MaxClients (DefaultMaxClients, 128) open at once,
//     Config.MaxClientsPerIP (32) from one IP; a connection beyond either
//     is closed as soon as it is accepted (internal/connlimit), so a flood
//     of slow connections costs bounded file descriptors and leaves other
//     addresses served.
//   - HTTP: header read 10 s, body read 30 s, writing the reply 30 s after
//     the request's deadline (a client that never reads is dropped), idle
//     connections 2 min, headers 16 KiB.
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
// dag, metrics, internal/connlimit and internal/securefile, answer without
// authentication or (off loopback, unless told) without TLS, listen on a
// public interface unless configured to, panic or answer a stack trace on
// any input, or hold a lock while it sleeps.
package rpc
