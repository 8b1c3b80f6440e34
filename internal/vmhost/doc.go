// Package vmhost says what this host offers a VM: the accelerator (KVM
// or TCG, ChooseAccel), the TSC frequency, and facts about disk images
// read with qemu-img (a base image's checked backing chain, an image's
// virtual size). Both the checks before a VM starts (internal/hostcheck)
// and its launcher (isolate) use it; it links nothing of the image store,
// so that the container launcher, which shares isolate, does not either.
package vmhost
