// Package keys manages the node's long-lived secrets and the printable
// addresses derived from them.
//
// It provides three things:
//
//   - the node identity: an Ed25519 libp2p private key kept in one file
//     (LoadOrCreateIdentity);
//   - mining addresses: a network prefix byte and a 20-byte public key hash,
//     printed as base58 with a 4-byte double-SHA-256 checksum (Address,
//     DecodeAddress, AddressFromPubKey);
//   - mining keys: Ed25519 keys saved under a directory, one file per address
//     (NewMiningKey, LoadOrCreateDefaultMiningAddress).
//
// Key files hold crypto.MarshalPrivateKey bytes. They are written with mode
// 0600 through a temporary file in the same directory that is synced and then
// renamed over the target, so a crash never leaves a half-written key; missing
// parent directories are created with mode 0700.
//
// Loading checks, besides the format and the key type, two things a file can
// get wrong without failing to parse, each an error naming the file:
//
//   - the public key stored beside the seed must be the one the seed derives
//     (ErrKeyMismatch); libp2p would otherwise use the stored half as it is,
//     so one damaged byte silently changes the peer ID or the mining address;
//   - like ssh with a private key, a file its group or others may access
//     (any of the mode bits 077) is refused, not warned about
//     (ErrKeyPermissions): the error says to run chmod 600 on it. A warning
//     scrolls past in a daemon's log while the key stays exposed; refusing
//     costs one chmod. Modes 0600 and 0400 load. Windows, where these bits
//     mean nothing, is not checked.
//
// What this package must not do: it never replaces a key file that exists but
// cannot be read, parsed or trusted (that is an error naming the file, because
// a new key would silently change the node's identity or lose mined funds); it
// never logs or prints key material; and it imports nothing else from this module
// but internal/securefile (the atomic 0600 writer) and nothing networked (only
// libp2p's core/crypto key types).
package keys
