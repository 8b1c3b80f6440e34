package image

import (
	"encoding/binary"
	"fmt"
)

// IDMap maps the IDs of a layer's files on the host to the IDs the layer
// holds: a user namespace's, whose files the host sees shifted (the same
// map for users and groups, as cove's user namespaces have). false: id
// is not in the map.
type IDMap func(id uint32) (uint32, bool)

// id maps id, refusing one the map does not have.
func (m IDMap) id(id uint32) (uint32, error) {
	if in, ok := m(id); ok {
		return in, nil
	}
	return 0, fmt.Errorf("owner ID %d is not one of the container's user namespace", id)
}

// The xattrs whose values hold IDs, as the host reads them.
const (
	aclAccess     = "system.posix_acl_access"
	aclDefault    = "system.posix_acl_default"
	capabilityKey = "security.capability"
)

// xattrs maps the IDs xs (an entry's xattrs) hold, in place: the named
// users and groups of its POSIX ACLs, and the root ID of a namespaced
// file capability (VFS_CAP_REVISION_3), which becomes a plain one
// (revision 2) when it is the namespace's root, as an image holds it.
func (m IDMap) xattrs(xs map[string]string) error {
	for _, k := range []string{aclAccess, aclDefault} {
		if v, ok := xs[k]; ok {
			mapped, err := m.acl(v)
			if err != nil {
				return fmt.Errorf("xattr %s: %w", k, err)
			}
			xs[k] = mapped
		}
	}
	if v, ok := xs[capabilityKey]; ok {
		mapped, err := m.capability(v)
		if err != nil {
			return fmt.Errorf("xattr %s: %w", capabilityKey, err)
		}
		xs[capabilityKey] = mapped
	}
	return nil
}

// The POSIX ACL xattr format: a version, then entries of a tag, the
// permissions and an ID (little-endian); only named users' and groups'
// IDs are IDs.
const (
	aclVersion   = 2
	aclHeader    = 4
	aclEntry     = 8
	aclUserTag   = 0x02
	aclGroupTag  = 0x08
	capRevision3 = 0x03000000
	capRevision2 = 0x02000000
	capRevMask   = 0xff000000
	capV3Size    = 24
	capV2Size    = 20
)

// acl maps the IDs of the ACL value v.
func (m IDMap) acl(v string) (string, error) {
	b := []byte(v)
	if len(b) < aclHeader || (len(b)-aclHeader)%aclEntry != 0 || binary.LittleEndian.Uint32(b) != aclVersion {
		return "", fmt.Errorf("not a POSIX ACL of version %d (%d bytes)", aclVersion, len(b))
	}
	for e := b[aclHeader:]; len(e) > 0; e = e[aclEntry:] {
		if tag := binary.LittleEndian.Uint16(e); tag != aclUserTag && tag != aclGroupTag {
			continue
		}
		id, err := m.id(binary.LittleEndian.Uint32(e[4:]))
		if err != nil {
			return "", err
		}
		binary.LittleEndian.PutUint32(e[4:], id)
	}
	return string(b), nil
}

// capability maps the root ID of a revision 3 file capability v; a
// capability of the namespace's root becomes revision 2. Other
// revisions are kept as they are.
func (m IDMap) capability(v string) (string, error) {
	b := []byte(v)
	if len(b) != capV3Size || binary.LittleEndian.Uint32(b)&capRevMask != capRevision3 {
		return v, nil
	}
	root, err := m.id(binary.LittleEndian.Uint32(b[capV2Size:]))
	if err != nil {
		return "", err
	}
	if root != 0 {
		binary.LittleEndian.PutUint32(b[capV2Size:], root)
		return string(b), nil
	}
	magic := binary.LittleEndian.Uint32(b)&^capRevMask | capRevision2
	binary.LittleEndian.PutUint32(b, magic)
	return string(b[:capV2Size]), nil
}
