package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/dagnode/dagnode/dag"
)

// ErrorCode is the code of a JSON-RPC error object. The values are btcd's
// btcjson codes (and so Bitcoin Core's) where those exist; they are part of
// the API and never change meaning.
type ErrorCode int

// The JSON-RPC 2.0 codes, used by both envelope versions.
const (
	// CodeParseError: the body is not valid JSON.
	CodeParseError ErrorCode = -32700
	// CodeInvalidRequest: valid JSON but not a request (no method, bad id,
	// unknown jsonrpc version, empty or oversize batch, oversize body).
	CodeInvalidRequest ErrorCode = -32600
	// CodeMethodNotFound: no method of that name.
	CodeMethodNotFound ErrorCode = -32601
	// CodeInvalidParams: wrong number of params, a param of the wrong JSON
	// type, an unknown named param.
	CodeInvalidParams ErrorCode = -32602
	// CodeInternal: a failure inside this node (including a recovered panic).
	CodeInternal ErrorCode = -32603
)

// Application codes, as in btcd's btcjson.
const (
	// CodeMisc (btcd ErrRPCMisc): an operation failed for a reason the
	// message gives: a timeout, a busy miner, a failed dial, a part of the
	// node that is not available (btcd ErrRPCUnimplemented is -1 too).
	CodeMisc ErrorCode = -1
	// CodeInvalidAddressOrKey (btcd ErrRPCInvalidAddressOrKey): a malformed
	// peer ID or multiaddr.
	CodeInvalidAddressOrKey ErrorCode = -5
	// CodeBlockNotFound (btcd ErrRPCBlockNotFound): no block with that hash.
	CodeBlockNotFound ErrorCode = -5
	// CodeInvalidParameter (btcd ErrRPCInvalidParameter): a param of the right
	// type with a value that is not allowed: out of its range, not a hash,
	// not one of the listed choices, a peer that is not connected or banned.
	CodeInvalidParameter ErrorCode = -8
	// CodeOutOfRange is CodeInvalidParameter, as Bitcoin Core answers a
	// height out of range. (btcd's own ErrRPCOutOfRange is -1; -8 is what
	// the brief and Bitcoin Core use.)
	CodeOutOfRange ErrorCode = CodeInvalidParameter
	// CodeDeserialization (btcd ErrRPCDeserialization, ErrRPCDecodeHexString):
	// submitblock's argument is not hex or not a block.
	CodeDeserialization ErrorCode = -22
	// CodeNodeNotAdded (btcd ErrRPCClientNodeNotAdded): addnode remove of a
	// peer that was never added.
	CodeNodeNotAdded ErrorCode = -24
)

// Error is a JSON-RPC error object. Handlers return it for failures the
// client caused or should know about; Client.Call returns it for an error
// response.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message)
}

func errorf(code ErrorCode, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// Errors an adapter returns (wrapped with %w) so that the server answers with
// the right code.
var (
	// ErrInvalidPeerID marks a peer ID that does not parse (-5).
	ErrInvalidPeerID = errors.New("invalid peer ID")
	// ErrInvalidAddress marks a multiaddr that does not parse or lacks
	// /p2p/<peer ID> where one is needed (-5).
	ErrInvalidAddress = errors.New("invalid address")
	// ErrPeerNotFound marks a peer that is not connected (-8).
	ErrPeerNotFound = errors.New("peer not connected")
	// ErrNodeNotAdded marks addnode remove of a peer that is not a
	// persistent peer (-24).
	ErrNodeNotAdded = errors.New("node has not been added")
)

// toError turns a handler's error into an error object. Errors it does not
// recognise get the fallback code and their own message.
func toError(err error, fallback ErrorCode) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(CodeMisc, "request timed out: %v", err)
	case errors.Is(err, context.Canceled):
		return errorf(CodeMisc, "request cancelled (client gone or server shutting down): %v", err)
	case errors.Is(err, dag.ErrUnknownBlock):
		return errorf(CodeBlockNotFound, "block not found: %v", err)
	case errors.Is(err, ErrInvalidPeerID), errors.Is(err, ErrInvalidAddress):
		return errorf(CodeInvalidAddressOrKey, "%v", err)
	case errors.Is(err, ErrPeerNotFound):
		return errorf(CodeInvalidParameter, "%v", err)
	case errors.Is(err, ErrNodeNotAdded):
		return errorf(CodeNodeNotAdded, "%v", err)
	}
	if fallback == CodeInternal {
		return errorf(CodeInternal, "internal error: %v", err)
	}
	return errorf(fallback, "%v", err)
}

// notAvailable is the answer of a method whose part of the node is not
// wired (a nil interface in Config).
func notAvailable(method, what string) *Error {
	return errorf(CodeMisc, "%s is not available: this node runs without %s", method, what)
}
