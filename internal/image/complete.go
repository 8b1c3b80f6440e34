package image

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cove-project/cove/spec"
)

// Ensure brings image ref into the store as policy (spec.PullAlways,
// PullMissing, PullNever) says, showing progress on w (nil: none; see
// NewProgressPrinter).
func Ensure(ctx context.Context, w io.Writer, ref, policy string) (ImageRecord, error) {
	st, err := OpenDefault()
	if err != nil {
		return ImageRecord{}, err
	}
	if strings.HasPrefix(ref, LocalRegistry+"/") {
		policy = spec.PullNever // imported: no registry has it
	}
	if policy != spec.PullAlways {
		if rec, err := st.Lookup(ref); err == nil || policy == spec.PullNever {
			return rec, err
		}
	}
	opt := PullOptions{}
	if w != nil {
		opt.Progress = NewProgressPrinter(w)
	}
	rec, err := st.Pull(ctx, ref, opt)
	if err == nil && w != nil {
		fmt.Fprintf(w, "pulled %s\n", strings.Join(rec.Names, ", "))
	}
	return rec, err
}
