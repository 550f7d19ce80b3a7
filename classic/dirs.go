package classic

import (
	"io"

	"github.com/gander-pair/gander/internal/zipsafe"
)

// Directories travel as zips; making and unpacking them is
// internal/zipsafe's (confined extraction, bounds, nothing left on error).

func zipSize(dir string) (int64, zipsafe.Stats, error)      { return zipsafe.ZipSize(dir) }
func zipDir(w io.Writer, dir string) (zipsafe.Stats, error) { return zipsafe.Zip(w, dir) }

// extractLimits are the offer's own counts: a zip holding more files or
// bytes than offered is refused. (zipsafe reads 0 as its default, so an
// offer of none allows one.)
func extractLimits(o *directoryOffer) zipsafe.Limits {
	return zipsafe.Limits{MaxFiles: max(o.Numfiles, 1), MaxBytes: max(o.Numbytes, 1)}
}
