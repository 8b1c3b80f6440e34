// Package image is cove's OCI image store and its registry pull: a
// content-addressed store on the local file system, filled by pulling
// from registries over the distribution API with go-containerregistry's
// reference parser, auth keychains and token/basic auth transport.
// Linux only; every function here has effects on the store's directory.
//
// # Layout
//
// Under the store's root (/var/lib/cove/images, or [images] store of
// /etc/cove/cove.toml: see OpenDefault):
//
//	blobs/sha256/HEX                  manifests, indexes and configs, exactly as
//	                                  fetched; each verified against its digest
//	layers/sha256/DIFFID_HEX/         one unpacked layer, an overlayfs lower
//	                                  directory, named by its diffID (the digest
//	                                  of the uncompressed tar), so the gzip and
//	                                  zstd forms of a layer share one directory;
//	                                  shared by every image that has it
//	images/sha256/MANIFEST_HEX.json   an image record (ImageRecord): the platform
//	                                  manifest's digest, the index digest it was
//	                                  reached through, platform, config, the
//	                                  ordered layers with digests, diffIDs and
//	                                  sizes, and when it was stored
//	names.json                        the names index, "REGISTRY/REPO:TAG" (or
//	                                  "REGISTRY/REPO@sha256:…" for a pull by
//	                                  digest) → manifest digest; the one source
//	                                  of truth for names (ImageRecord.Names is
//	                                  filled from it when a record is read)
//	tmp/                              work in progress (see below)
//	.lock                             the store-wide flock
//
// An image's ID is the hex of its platform manifest's digest; a unique
// prefix of it names the image like Docker's IMAGE ID. Only sha256
// digests are accepted (they name files here).
//
// # Visibility and crashes
//
// Nothing half-done is ever visible outside tmp/. A layer is streamed
// once: the compressed blob is hashed and counted as it arrives (never
// more than the manifest's size + 1 bytes are read), decompressed by its
// media type (checked against the stream's magic bytes), hashed again
// uncompressed, and unpacked by package layer into tmp/pull-ID/DIFFID_HEX.
// Only when the blob's digest and size, and the diffID from the config's
// rootfs.diff_ids, all match is the file system synced (syncfs) and the
// directory renamed (RENAME_NOREPLACE) into layers/, then layers/sha256
// fsynced. Records, blobs and names.json are written to a temporary file,
// fsynced, renamed into place and their directory fsynced, and only after
// every layer of the image is in place. A pull killed at any point leaves
// at most complete layers (reused by the next pull) and debris in tmp/.
// Removal renames a layer into tmp/ before deleting it, so a crash
// mid-delete does not leave a partial layer in layers/ either.
//
// # Locking
//
// The store-wide flock on .lock is held only for short critical sections:
// registering a pull, committing its blobs, record and names, Remove, and
// Prune's decisions (its deletions of renamed-away trees run after).
//
// Each pull owns tmp/pull-ID/ and holds an exclusive flock on
// tmp/pull-ID.lock for its lifetime; the lock file is created and locked
// under the store lock. Stale entries are removed at the start of every
// pull and prune, under the store lock: a pull-ID.lock whose flock can be
// taken belongs to a dead pull, and its directory and lease go with it;
// entries without a live lock (atomic-write temporaries, trash) go too.
//
// Two pulls of one layer: a pull takes an exclusive flock on
// tmp/layer-DIFFID_HEX.lock (waiting, cancellably, for the other pull)
// and re-checks layers/ before downloading, so one layer is never
// unpacked twice at once. The holder unlinks the lock file before it
// lets go of it (and the sweep unlinks a free one only while holding its
// flock); a waiter that wins the flock on a file no longer at that path
// takes the new one, and then finds the layer in place. As a last line, the rename into layers/
// uses RENAME_NOREPLACE: should two copies ever race, the loser removes
// its own.
//
// Prune and a racing pull use leases rather than reference counts: after
// resolving the manifest and config, and before checking which layers it
// already has, a pull writes tmp/pull-ID.lease, the diffIDs it will
// reference, under the store lock. Prune holds the store lock while it
// decides, and keeps every layer named by a record it keeps or by the
// lease of a live pull (its pull-ID.lock is held). So a layer a pull has
// seen in layers/ or is unpacking cannot be pruned before its record is
// committed, and a pull that registers after a prune sees the prune's
// result. At commit, under the store lock, the pull checks that each of
// its layers is still present. Leases vanish with their pull (a dead
// pull's lease is swept as stale), so there is no count to leak.
//
// # Import and save
//
// An import (docker-archive, oci-archive, OCI layout, rootfs tarball)
// unpacks its archive into its own tmp/ directory, refusing members that
// would leave it, and then goes through the pull's own placement path
// (place): the same digest, size and diffID checks, leases, unpacking in
// tmp/ and renaming into layers/, and atomic records and names. Imported
// images are named "localhost/NAME:TAG" (LocalRegistry) and never
// pulled. A save rebuilds each layer's tar from its unpacked directory
// (overlayfs whiteouts and opaque directories back to .wh. entries), so
// the saved digests are not the registry's; see Store.Save.
package image
