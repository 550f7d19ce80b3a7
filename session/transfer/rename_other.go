//go:build !linux

package transfer

import "os"

func renameNoReplace(root *os.Root, oldname, newname string) error {
	return renameChecked(root, oldname, newname)
}
