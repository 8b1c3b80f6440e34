// Package ondemand holds what cove's socket-activated responders share
// (the name service, internal/dns, and the DHCP responder,
// internal/dhcp): taking the sockets systemd passes (Sockets), and
// knowing when the responder has been idle long enough to exit (Idle).
// Such a responder keeps no state of its own: it serves, returns after
// being idle, and its process exits 0; requests that arrive meanwhile
// wait in the sockets systemd keeps and start it again.
package ondemand
