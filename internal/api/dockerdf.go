package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/launch"
)

// dfRoutes is Docker's disk usage endpoint.
func dfRoutes() []route {
	return []route{{method: http.MethodGet, path: "/system/df", need: roleMember, handle: (*Server).systemDF}}
}

// DockerDF is the answer to GET /system/df (and cove system df): the
// images with their sizes and users, the containers with the size of
// their writable layers, the volumes with theirs. Sizes of images and
// layers are compressed bytes, as cove's image list gives them.
type DockerDF struct {
	LayersSize int64                `json:"LayersSize"` // of every layer in the store, each once
	Images     []dockerImageSummary `json:"Images"`
	Containers []DFContainer        `json:"Containers"`
	Volumes    []DockerVolume       `json:"Volumes"`
	BuildCache []struct{}           `json:"BuildCache"`
}

// DFContainer is a container in DockerDF: its list entry and the bytes
// in its writable layer (an image container's directory,
// launch.ContainerDir; a rootfs container writes in place and has none).
type DFContainer struct {
	dockerSummary
	SizeRw     int64 `json:"SizeRw"`
	SizeRootFs int64 `json:"SizeRootFs"`
}

// systemDF answers GET /system/df.
func (s *Server) systemDF(c *call) {
	df, err := s.DiskUsage(c.ctx())
	if err != nil {
		c.failWith(err)
		return
	}
	c.reply(http.StatusOK, df)
}

// DiskUsage measures what GET /system/df shows.
func (s *Server) DiskUsage(ctx context.Context) (DockerDF, error) {
	df := DockerDF{Images: []dockerImageSummary{}, Containers: []DFContainer{}, Volumes: []DockerVolume{}, BuildCache: []struct{}{}}
	imageSizes, ierr := s.imagesDF(ctx, &df)
	cerr := s.containersDF(ctx, &df, imageSizes)
	verr := s.volumesDF(ctx, &df)
	return df, errors.Join(ierr, cerr, verr)
}

// imagesDF fills df's images and layers size, and returns each image's
// size by the image name its containers show.
func (s *Server) imagesDF(ctx context.Context, df *DockerDF) (map[string]int64, error) {
	st, err := s.opt.Images()
	if err != nil {
		return nil, err
	}
	recs, err := st.List()
	if err != nil {
		return nil, err
	}
	users, err := s.imageUsers(ctx, st)
	if err != nil {
		return nil, err
	}
	layerUse := map[string]int{}
	layerSize := map[string]int64{}
	for _, r := range recs {
		for _, l := range r.Layers {
			layerUse[l.DiffID.String()]++
			layerSize[l.DiffID.String()] = l.Size
		}
	}
	for _, n := range layerSize {
		df.LayersSize += n
	}
	sizes := map[string]int64{}
	for _, r := range recs {
		sum := imageSummary(r)
		sum.SharedSize, sum.Containers = sharedSize(r, layerUse), int64(len(users[r.Digest.String()]))
		df.Images = append(df.Images, sum)
		for _, ref := range append(append([]string{sum.ID}, sum.RepoTags...), r.Names...) {
			sizes[ref] = r.Size
		}
	}
	return sizes, nil
}

// sharedSize is the size of r's layers that other images have too.
func sharedSize(r image.ImageRecord, layerUse map[string]int) int64 {
	var n int64
	for _, l := range r.Layers {
		if layerUse[l.DiffID.String()] > 1 {
			n += l.Size
		}
	}
	return n
}

// containersDF fills df's containers: every workload and created
// container, as GET /containers/json?all=1 lists them, with its writable
// layer's size; imageSizes gives SizeRootFs its image's part.
func (s *Server) containersDF(ctx context.Context, df *DockerDF, imageSizes map[string]int64) error {
	ws, err := s.backend.ListStates(ctx)
	if err != nil {
		return err
	}
	specs, recs := s.specIndex(), s.records.list()
	for _, w := range withRecords(ws, recs) {
		d := summary(w, viewSpec(specs, recs[w.Name], w.Name))
		recordSummary(&d, recs[w.Name])
		rw, err := volume.DirSize(launch.ContainerDir(w.Name)) // its writable layer: the overlay is mounted in the container's namespace only
		if err != nil {
			return err
		}
		df.Containers = append(df.Containers, DFContainer{dockerSummary: d, SizeRw: rw, SizeRootFs: rw + imageSizes[d.Image]})
	}
	return nil
}

// volumesDF fills df's volumes with their sizes and users.
func (s *Server) volumesDF(ctx context.Context, df *DockerDF) error {
	st := volume.Default()
	vs, err := st.List()
	if err != nil {
		return err
	}
	users, err := s.VolumeUsers(ctx)
	if err != nil {
		return err
	}
	for _, v := range vs {
		size, err := st.Size(v.Name)
		if err != nil {
			return err
		}
		d := DockerVolumeOf(v)
		d.UsageData = &VolumeUsage{Size: size, RefCount: int64(len(users[v.Name]))}
		df.Volumes = append(df.Volumes, d)
	}
	return nil
}
