package zipsafe

import (
	"errors"
	"fmt"
)

// The reasons Extract refuses a zip. Each refusal is an *EntryError or a
// *LimitError wrapping one of these, so callers test with errors.Is and
// show Error() to the user and the sender.
var (
	ErrUnsafeName   = errors.New("unsafe name")
	ErrNotRegular   = errors.New("not a regular file or folder")
	ErrDuplicate    = errors.New("duplicate name")
	ErrTooManyFiles = errors.New("too many entries")
	ErrTooLarge     = errors.New("too many bytes")
	ErrRatio        = errors.New("compression ratio too high (a zip bomb?)")
	ErrCorrupt      = errors.New("corrupt zip")
	ErrExists       = errors.New("target already exists")
	ErrChanged      = errors.New("a file changed while it was zipped")
)

// EntryError is a refusal of one entry of the zip.
type EntryError struct {
	Name   string // the entry's name as the zip spells it
	Err    error  // one of the Err* values
	Detail string // why, for a person
}

func (e *EntryError) Error() string {
	name := e.Name
	if len(name) > 200 {
		name = name[:200] + "…"
	}
	if e.Detail == "" {
		return fmt.Sprintf("zip entry %q: %v", name, e.Err)
	}
	return fmt.Sprintf("zip entry %q: %v: %s", name, e.Err, e.Detail)
}

func (e *EntryError) Unwrap() error { return e.Err }

// LimitError is a refusal of the zip as a whole: a bound of Limits.
type LimitError struct {
	Err    error // ErrTooManyFiles, ErrTooLarge or ErrRatio
	Detail string
}

func (e *LimitError) Error() string { return fmt.Sprintf("zip refused: %v: %s", e.Err, e.Detail) }
func (e *LimitError) Unwrap() error { return e.Err }
