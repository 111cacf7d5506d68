package report

import (
	"context"
	"io"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/logtail"
)

// Log writes the daemon log's last lines to w, then, if follow, what is
// appended, like tail -F across rotations, until ctx ends.
func Log(ctx context.Context, p config.Paths, lines int, follow bool, w io.Writer) error {
	return logtail.FollowLog(ctx, p.LogFile(), lines, follow, w)
}
