package vmhost

import (
	"bytes"
	"errors"
	"io"
	"os"

	"github.com/cove-project/cove/spec"
)

// DetectDiskFormat reads an image's first bytes: "qcow2" if it starts with
// the qcow2 magic ("QFI\xfb"), else "raw".
//
// Call it once, when compiling the unit, and pin the result: a guest can
// write anything to the start of a raw disk, so probing at every boot would
// let it turn its raw disk into a qcow2 image with a backing file of its
// choosing on the host (QEMU's own reason for warning about probing). A
// disk file of an image in the store, which nothing writes, is read at
// each start instead (an "oci:" base's format is not known before).
func DetectDiskFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err // a *PathError, "read PATH: …", as Open's is "open PATH: …"
	}
	if bytes.Equal(magic, []byte("QFI\xfb")) {
		return spec.FormatQcow2, nil
	}
	return spec.FormatRaw, nil
}
