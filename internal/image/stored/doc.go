// Package stored reads cove's image store (its layout: package image's
// documentation): the image records and the names index, lookups of a
// name, digest or ID (with the search registries of registries.toml),
// and the completion of an image container's launcher configuration
// (Store.Complete, PrepareState). It holds no registry client, so the
// container launcher (cove-launch), which completes an image container's
// configuration at every start, links none; package image, which pulls,
// imports, saves, tags and prunes, builds on it (image.Store embeds a
// Store).
package stored
