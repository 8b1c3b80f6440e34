package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
)

// Group is the group whose members may read workloads and start, stop and
// restart them through the API.
const Group = "cove"

// role is what a caller may do.
type role int

const (
	roleNone   role = iota // nothing: every request is refused
	roleMember             // read, start, stop, restart
	roleRoot               // everything
)

// String names the role in audit records.
func (r role) String() string {
	switch r {
	case roleRoot:
		return "root"
	case roleMember:
		return "member"
	}
	return "none"
}

// peer is who is at the other end of a connection, from SO_PEERCRED.
type peer struct {
	known    bool // the credentials could be read
	pid      int32
	uid, gid uint32
	groups   []uint32 // supplementary groups, from /proc/PID/status
	role     role
}

// peerKey is the context key of a connection's peer.
type peerKey struct{}

// withPeer stores p in ctx.
func withPeer(ctx context.Context, p peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// peerOf returns the peer stored in ctx; an unknown peer has roleNone.
func peerOf(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// connContext is the http.Server's ConnContext: it reads the peer's
// credentials once per connection and decides its role.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok {
		c = lc.Conn
	}
	p := peer{}
	if uc, ok := c.(*net.UnixConn); ok {
		p = peerCred(uc)
	}
	return withPeer(ctx, p)
}

// peerCred reads the credentials of a unix socket's peer (as of connect)
// and its supplementary groups (as of now), and decides its role.
func peerCred(c *net.UnixConn) peer {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}
	}
	var cr *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cr, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || serr != nil {
		return peer{}
	}
	p := peer{known: true, pid: cr.Pid, uid: cr.Uid, gid: cr.Gid}
	if cr.Pid > 0 {
		p.groups, _ = procGroups(fmt.Sprintf("/proc/%d/status", cr.Pid))
	}
	p.role = roleFor(p, coveGID)
	return p
}

// roleFor decides p's role: uid 0 is root; a caller whose primary or
// supplementary groups include the group lookup finds is a member; anyone
// else, or a caller whose credentials are unknown, has no role.
func roleFor(p peer, lookup func() (uint32, bool)) role {
	switch {
	case !p.known:
		return roleNone
	case p.uid == 0:
		return roleRoot
	}
	gid, ok := lookup()
	if !ok {
		return roleNone
	}
	if p.gid == gid {
		return roleMember
	}
	for _, g := range p.groups {
		if g == gid {
			return roleMember
		}
	}
	return roleNone
}

// coveGID looks group cove up by name (in /etc/group, or through NSS).
func coveGID() (uint32, bool) {
	g, err := user.LookupGroup(Group)
	if err != nil {
		return 0, false
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(gid), err == nil
}

// procGroups reads the Groups: line of a /proc/PID/status file.
func procGroups(path string) ([]uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var gs []uint32
		for _, field := range strings.Fields(rest) {
			g, err := strconv.ParseUint(field, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("read groups from %s: %w", path, err)
			}
			gs = append(gs, uint32(g))
		}
		return gs, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("read groups from %s: no Groups: line", path)
}

// maxAuditRequest bounds the request line in an audit record.
const maxAuditRequest = 256

// auditor records authorisation decisions: in the journal with structured
// fields (COVE_UID, COVE_PID, COVE_DECISION, COVE_REQUEST) when stderr is
// the journal, as under cove-api.service, else as lines on w.
type auditor struct {
	mu      sync.Mutex
	w       io.Writer
	journal bool
}

// newAuditor returns an auditor writing to w unless stderr is the journal.
func newAuditor(w io.Writer) *auditor {
	ok, _ := journal.StderrIsJournalStream()
	return &auditor{w: w, journal: ok && journal.Enabled()}
}

// record notes that request (e.g. "POST /v1/workloads/web/stop") of p was
// allowed or denied.
func (a *auditor) record(p peer, allowed bool, request string) {
	if a == nil {
		return
	}
	decision, prio := "allow", journal.PriInfo
	if !allowed {
		decision, prio = "deny", journal.PriWarning
	}
	if len(request) > maxAuditRequest {
		request = request[:maxAuditRequest] + "…"
	}
	uid := "unknown"
	if p.known {
		uid = strconv.FormatUint(uint64(p.uid), 10)
	}
	msg := fmt.Sprintf("%s uid=%s pid=%d role=%s %s", decision, uid, p.pid, p.role, request)
	if a.journal {
		err := journal.Send("cove-api: "+msg, prio, map[string]string{
			"SYSLOG_IDENTIFIER": "cove-api",
			"COVE_DECISION":     decision,
			"COVE_UID":          uid,
			"COVE_PID":          strconv.Itoa(int(p.pid)),
			"COVE_REQUEST":      request,
		})
		if err == nil {
			return
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.w, "cove-api: %s\n", msg)
}
