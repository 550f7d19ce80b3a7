package classic

import (
	"io"

	"github.com/gander-pair/gander/internal/zipsafe"
)

// Directories travel as zips; making and unpacking them is
// internal/zipsafe's (confined extraction, bounds).

type zipLimits = zipsafe.Limits

type zipStats = zipsafe.Stats

func zipSize(dir string) (int64, zipStats, error)      { return zipsafe.ZipSize(dir) }
func zipDir(w io.Writer, dir string) (zipStats, error) { return zipsafe.Zip(w, dir) }
func extractZip(zipPath, target string, lim zipLimits) (zipStats, error) {
	return zipsafe.Extract(zipPath, target, lim)
}
