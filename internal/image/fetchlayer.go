package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/internal/image/layer"
)

// maxTrailing bounds the uncompressed bytes after a tar's end-of-archive
// blocks (tar's record padding is at most 10 KiB; a stream that goes on
// and on is a decompression bomb).
const maxTrailing = 1 << 20

// reportEvery is how many compressed bytes pass between progress events.
const reportEvery = 256 << 10

// verifier reads a blob's compressed stream, never more than its stated
// size + 1 bytes, hashing and counting what passes.
type verifier struct {
	r        io.Reader
	h        hash.Hash
	n        int64
	want     v1.Descriptor
	report   func(done int64)
	reported int64
}

// newVerifier wraps body for the blob d; report (non-nil) gets the byte
// count every reportEvery bytes and at the end.
func newVerifier(body io.Reader, d v1.Descriptor, report func(int64)) *verifier {
	return &verifier{r: io.LimitReader(body, d.Size+1), h: sha256.New(), want: d, report: report}
}

// Read implements io.Reader.
func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n-v.reported >= reportEvery || v.n == v.want.Size && v.reported != v.n {
		v.reported = v.n
		v.report(v.n)
	}
	return n, err
}

// finish reads the rest of the stream (still bounded) and checks its
// length and digest against the manifest's; the error names the blob.
func (v *verifier) finish() error {
	if _, err := io.Copy(io.Discard, v); err != nil {
		return fmt.Errorf("download blob %s: after %d of %d bytes: %w", v.want.Digest, v.n, v.want.Size, err)
	}
	if v.n > v.want.Size {
		return fmt.Errorf("blob %s is longer than the %d bytes its manifest says: refused", v.want.Digest, v.want.Size)
	}
	if v.n < v.want.Size {
		return fmt.Errorf("blob %s is truncated: %d of the %d bytes its manifest says: refused", v.want.Digest, v.n, v.want.Size)
	}
	if got := hashOf(v.h); got != v.want.Digest {
		return fmt.Errorf("blob %s does not match its digest (the content's is %s): tampered or corrupt, refused", v.want.Digest, got)
	}
	return nil
}

// fetchLayer streams layer j from src once into dir: verified against the
// manifest's digest and size and the config's diffID, decompressed by its
// media type, and unpacked with package layer. Any error means dir holds
// garbage. A failure of the stream is reported as the blob's corruption
// when its digest does not match.
func fetchLayer(ctx context.Context, src blobSource, j layerJob, dir string, lim layer.Limits, report func(int64)) (layer.Stats, error) {
	body, err := src.blob(ctx, j.desc.Digest, j.desc.Size)
	if err != nil {
		return layer.Stats{}, err
	}
	defer body.Close()
	v := newVerifier(body, j.desc, report)
	stats, err := unpackStream(v, j, dir, lim)
	if err != nil && !localFault(ctx, err) {
		if verr := v.finish(); verr != nil {
			return stats, verr
		}
	}
	if err != nil {
		return stats, fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	return stats, v.finish()
}

// unpackStream decompresses r as j says, unpacks it into dir, reads the
// rest of the uncompressed stream, and checks its digest against j's
// diffID.
func unpackStream(r io.Reader, j layerJob, dir string, lim layer.Limits) (layer.Stats, error) {
	dec, err := decompress(bufio.NewReaderSize(r, 64<<10), j.comp)
	if err != nil {
		return layer.Stats{}, err
	}
	defer dec.Close()
	h := sha256.New()
	tee := io.TeeReader(dec, h)
	stats, err := layer.Unpack(dir, tee, lim)
	if err != nil {
		return stats, err
	}
	n, err := io.Copy(io.Discard, io.LimitReader(tee, maxTrailing+1))
	if err != nil {
		return stats, fmt.Errorf("%s stream: %w", j.comp, err)
	}
	if n > maxTrailing {
		return stats, fmt.Errorf("more than %d bytes follow the tar archive's end: refused", maxTrailing)
	}
	if got := hashOf(h); got != j.diffID {
		return stats, fmt.Errorf("its uncompressed digest is %s, the config's diff_id says %s: refused", got, j.diffID)
	}
	return stats, nil
}

// localFault tells errors of this machine (the file system, a cancelled
// pull) from errors the stream may have caused: only the latter make it
// worth reading the rest of the blob to name a corrupt one.
func localFault(ctx context.Context, err error) bool {
	var pe *fs.PathError
	var le *os.LinkError
	var se *os.SyscallError
	return ctx.Err() != nil || errors.As(err, &pe) || errors.As(err, &le) || errors.As(err, &se)
}
