package dag

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorCode identifies the rule a block broke.
type ErrorCode int

// Rule violations. A block breaking any of these is invalid for good: whoever
// sent it misbehaved (gossip rejects it, the peer tracker scores the sender).
const (
	ErrBadVersion ErrorCode = iota + 1
	ErrWrongNetwork
	ErrNoParents
	ErrTooManyParents
	ErrParentsNotSorted
	ErrDuplicateParent
	ErrBadBodyHash
	ErrPayloadTooBig
	ErrBadMinerAddress
	ErrBadTarget
	ErrBadPoW
	ErrWrongTarget
	ErrTimeTooNew
	ErrTimeTooOld
	ErrBlockTooBig
	ErrMalformedBlock
	ErrParentInPast
	ErrMergeSetTooBig
)

// ErrBlockTooBig and ErrMalformedBlock come from DecodeBlock: every error a
// peer's bytes can cause is a *RuleError.

var codeNames = map[ErrorCode]string{
	ErrBadVersion:       "ErrBadVersion",
	ErrWrongNetwork:     "ErrWrongNetwork",
	ErrNoParents:        "ErrNoParents",
	ErrTooManyParents:   "ErrTooManyParents",
	ErrParentsNotSorted: "ErrParentsNotSorted",
	ErrDuplicateParent:  "ErrDuplicateParent",
	ErrBadBodyHash:      "ErrBadBodyHash",
	ErrPayloadTooBig:    "ErrPayloadTooBig",
	ErrBadMinerAddress:  "ErrBadMinerAddress",
	ErrBadTarget:        "ErrBadTarget",
	ErrBadPoW:           "ErrBadPoW",
	ErrWrongTarget:      "ErrWrongTarget",
	ErrTimeTooNew:       "ErrTimeTooNew",
	ErrTimeTooOld:       "ErrTimeTooOld",
	ErrBlockTooBig:      "ErrBlockTooBig",
	ErrMalformedBlock:   "ErrMalformedBlock",
	ErrParentInPast:     "ErrParentInPast",
	ErrMergeSetTooBig:   "ErrMergeSetTooBig",
}

// String returns the code's name.
func (c ErrorCode) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("ErrorCode(%d)", int(c))
}

// RuleError reports a block that breaks a consensus rule.
type RuleError struct {
	Code ErrorCode
	Desc string
}

// Error implements error.
func (e *RuleError) Error() string { return "dag: " + e.Code.String() + ": " + e.Desc }

func ruleError(c ErrorCode, format string, args ...any) error {
	return &RuleError{Code: c, Desc: fmt.Sprintf(format, args...)}
}

// IsRuleError reports whether err is a rule violation with code c.
func IsRuleError(err error, c ErrorCode) bool {
	var re *RuleError
	return errors.As(err, &re) && re.Code == c
}

// ErrDuplicateBlock is returned for a block the DAG already holds. It is not a
// rule violation: gossip ignores the message.
var ErrDuplicateBlock = errors.New("dag: block already known")

// MissingParentsError reports a block whose parents are not (yet) in the DAG:
// an orphan. It is recoverable, not a rule violation: fetch the parents and
// process the block again.
type MissingParentsError struct {
	Block   Hash
	Missing []Hash
}

// Error implements error.
func (e *MissingParentsError) Error() string {
	s := make([]string, len(e.Missing))
	for i, h := range e.Missing {
		s[i] = h.String()
	}
	return fmt.Sprintf("dag: block %s has %d unknown parents: %s", e.Block, len(e.Missing), strings.Join(s, ", "))
}
