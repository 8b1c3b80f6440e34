package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/image"
	"github.com/spf13/cobra"
)

// systemDF is cove system df [--json]: the space images, containers'
// writable layers and volumes take and how much of it is reclaimable,
// as docker system df shows it; --json prints what Docker's
// GET /system/df answers.
func systemDF(ctx context.Context, env *Env, asJSON bool) error {
	srv, done := localServer(env)
	defer done()
	df, err := srv.DiskUsage(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, df)
	}
	tw := newTable(env.Stdout, 2)
	fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
	for _, r := range dfRows(df) {
		pct := 0
		if r.size > 0 {
			pct = int(100 * r.reclaimable / r.size)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s (%d%%)\n", r.what, r.total, r.active, image.HumanSize(r.size), image.HumanSize(r.reclaimable), pct)
	}
	return tw.Flush()
}

// dfRow is one line of cove system df.
type dfRow struct {
	what              string
	total, active     int
	size, reclaimable int64
}

// dfRows sums df up as docker system df does: images are active while a
// container uses them and reclaimable otherwise (their layers that no
// active image shares); containers are active while they run, and their
// writable layers reclaimable otherwise; volumes are active while a
// workload uses them.
func dfRows(df api.DockerDF) []dfRow {
	img := dfRow{what: "Images", total: len(df.Images), size: df.LayersSize}
	var used int64
	for _, i := range df.Images {
		if i.Containers > 0 {
			img.active++
			used += i.Size - i.SharedSize
		}
	}
	img.reclaimable = max(df.LayersSize-used, 0)
	ctr := dfRow{what: "Containers", total: len(df.Containers)}
	for _, c := range df.Containers {
		ctr.size += c.SizeRw
		if c.State == "running" {
			ctr.active++
		} else {
			ctr.reclaimable += c.SizeRw
		}
	}
	vol := dfRow{what: "Local Volumes", total: len(df.Volumes)}
	for _, v := range df.Volumes {
		vol.size += v.UsageData.Size
		if v.UsageData.RefCount > 0 {
			vol.active++
		} else {
			vol.reclaimable += v.UsageData.Size
		}
	}
	return []dfRow{img, ctr, vol}
}

// systemCommand is cove system: this host's cove as a whole.
func systemCommand(env *Env) *cobra.Command {
	c := group("system", "show this host's cove as a whole")
	c.Example = "  cove system df"
	var asJSON bool
	df := &cobra.Command{
		Use:   "df [flags]",
		Short: "show the disk space images, containers and volumes use",
		Long: `Show the space images, containers' writable layers and volumes take and how
much of it is reclaimable, as docker system df does.`,
		Example: "  cove system df\n  cove system df --json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return systemDF(cmd.Context(), env, asJSON) },
	}
	df.Flags().BoolVar(&asJSON, "json", false, "print what Docker's GET /system/df answers")
	c.AddCommand(df)
	c.Short += ": " + strings.Join(subcommands(c), ", ")
	return c
}
