package image

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// codec is how a layer blob is compressed.
type codec string

const (
	uncompressed codec = "uncompressed"
	gzipped      codec = "gzip"
	zstandard    codec = "zstd"
)

// zstdMaxWindow bounds the memory a zstd layer may make the decoder use.
const zstdMaxWindow = 128 << 20

// compressionOf is the compression a layer media type states: Docker
// schema 2 and OCI layers (distributable or not; Docker's foreign layers
// are fetched from the registry like any other).
func compressionOf(mt types.MediaType) (codec, error) {
	switch mt {
	case types.DockerLayer, types.DockerForeignLayer, types.OCILayer, types.OCIRestrictedLayer:
		return gzipped, nil
	case types.OCILayerZStd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return zstandard, nil
	case types.DockerUncompressedLayer, types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return uncompressed, nil
	}
	return "", fmt.Errorf("layer media type %q is not supported", mt)
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniff tells the compression from a stream's first bytes.
func sniff(head []byte) codec {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return gzipped
	case bytes.HasPrefix(head, zstdMagic):
		return zstandard
	}
	return uncompressed
}

// Decompress returns the uncompressed stream of r: gzip or zstd as its
// first bytes say, else r itself. The caller closes it.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(len(zstdMagic)) // a short stream is judged by what there is
	return decompress(br, sniff(head))
}

// decompress returns the uncompressed stream of br, which must start
// with the magic bytes of want (and, uncompressed, with neither gzip's
// nor zstd's). The caller closes it.
func decompress(br *bufio.Reader, want codec) (io.ReadCloser, error) {
	head, _ := br.Peek(len(zstdMagic)) // a short stream is judged by what there is
	if got := sniff(head); got != want {
		return nil, fmt.Errorf("the media type says %s but the stream is %s", want, got)
	}
	switch want {
	case gzipped:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case zstandard:
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}
