package transfer

import (
	"io/fs"
	"os"
)

// renameChecked renames oldname to newname in root unless newname exists.
// Between the check and the rename another process could create newname;
// only renameNoReplace on Linux closes that window.
func renameChecked(root *os.Root, oldname, newname string) error {
	if _, err := root.Lstat(newname); err == nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrExist}
	}
	return root.Rename(oldname, newname)
}
