package wire

import (
	"errors"
	"fmt"
)

var (
	// ErrNotWhitelisted: the server refused the word
	// ("<word> is not executed because it is not in the whitelist.").
	ErrNotWhitelisted = errors.New("four-letter word not in the server's 4lw.commands.whitelist")
	// ErrEmptyReply: the server closed without a byte, which is what it does
	// for a word it does not know.
	ErrEmptyReply = errors.New("empty reply (server does not know the word, or closed at once)")
	// ErrReplyTooLarge: the reply went past the size cap.
	ErrReplyTooLarge = errors.New("reply exceeds the size cap")
	// ErrMalformed: the reply is not what the word answers.
	ErrMalformed = errors.New("malformed reply")
	// ErrNoReply: the connection was accepted but no complete reply came
	// (timeout, reset mid-reply): the endpoint is reachable.
	ErrNoReply = errors.New("no reply")
	// ErrInvalidWord: the zero Word.
	ErrInvalidWord = errors.New("invalid four-letter word")
)

// WordError says which endpoint and which word a failure belongs to.
type WordError struct {
	Endpoint string
	Word     string // four-letter word or "admin:<command>"
	Err      error
}

func (e *WordError) Error() string {
	return fmt.Sprintf("zookeeper %s %s: %v", e.Endpoint, e.Word, e.Err)
}

func (e *WordError) Unwrap() error { return e.Err }

// ErrNotServing: "This ZooKeeper instance is not currently serving requests"
// (no quorum, or still starting).
var ErrNotServing = errors.New("server not serving requests")
