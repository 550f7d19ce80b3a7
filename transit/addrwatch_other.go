//go:build !linux

package transit

import "context"

// addressChanges has no kernel notifications to offer here: the poll
// alone notices address changes.
func addressChanges(context.Context) <-chan struct{} { return nil }
