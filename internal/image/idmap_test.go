package image

import (
	"encoding/binary"
	"testing"
)

// shifted is a user namespace's map: host IDs 100000… are 0….
func shifted(id uint32) (uint32, bool) { return id - 100000, id >= 100000 && id < 165536 }

// TestIDMapXattrs maps the named users and groups of a POSIX ACL and the
// root ID of a namespaced file capability, which becomes a plain one for
// the namespace's root; an ID the map does not hold is refused.
func TestIDMapXattrs(t *testing.T) {
	acl := make([]byte, 4+3*8)
	binary.LittleEndian.PutUint32(acl, 2)
	for i, e := range [][2]uint32{{0x01, 0xffffffff}, {0x02, 101000}, {0x08, 102000}} { // USER_OBJ, USER 1000, GROUP 2000
		binary.LittleEndian.PutUint16(acl[4+8*i:], uint16(e[0]))
		binary.LittleEndian.PutUint32(acl[8+8*i:], e[1])
	}
	capV3 := make([]byte, 24)
	binary.LittleEndian.PutUint32(capV3, 0x03000001) // revision 3, effective
	binary.LittleEndian.PutUint32(capV3[4:], 1<<10)  // CAP_NET_BIND_SERVICE permitted
	binary.LittleEndian.PutUint32(capV3[20:], 100000)
	xs := map[string]string{aclAccess: string(acl), capabilityKey: string(capV3), "user.x": "y"}
	if err := IDMap(shifted).xattrs(xs); err != nil {
		t.Fatal(err)
	}
	a := []byte(xs[aclAccess])
	if got := [3]uint32{binary.LittleEndian.Uint32(a[8:]), binary.LittleEndian.Uint32(a[16:]), binary.LittleEndian.Uint32(a[24:])}; got != [3]uint32{0xffffffff, 1000, 2000} {
		t.Errorf("ACL IDs %v, want the owner's entry kept and 1000, 2000", got)
	}
	c := []byte(xs[capabilityKey])
	if len(c) != 20 || binary.LittleEndian.Uint32(c) != 0x02000001 || binary.LittleEndian.Uint32(c[4:]) != 1<<10 {
		t.Errorf("capability %x, want revision 2, effective, the same sets", c)
	}
	binary.LittleEndian.PutUint32(acl[16:], 5)
	if err := IDMap(shifted).xattrs(map[string]string{aclDefault: string(acl)}); err == nil {
		t.Error("an ACL naming host user 5 was mapped")
	}
	if err := IDMap(shifted).xattrs(map[string]string{aclAccess: "bad"}); err == nil {
		t.Error("a malformed ACL was taken")
	}
}
