package launch

import "testing"

func TestLookupUser(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\nbroken\n")
	group := []byte("root:x:0:\nstaff:x:50:\n")
	for _, c := range []struct {
		user     string
		uid, gid uint32
	}{
		{"www", 33, 34}, {"33", 33, 34}, {"1234", 1234, 0}, {"www:staff", 33, 50},
		{"www:7", 33, 7}, {"1234:staff", 1234, 50}, {"root", 0, 0},
	} {
		uid, gid, err := LookupUser(c.user, passwd, group)
		if err != nil || uid != c.uid || gid != c.gid {
			t.Errorf("LookupUser(%q) = %d:%d, %v; want %d:%d", c.user, uid, gid, err, c.uid, c.gid)
		}
	}
	for _, bad := range []string{"nobody", "www:nogroup", "x:0"} {
		if _, _, err := LookupUser(bad, passwd, group); err == nil {
			t.Errorf("LookupUser(%q) succeeded", bad)
		}
	}
	if _, _, err := LookupUser("www", nil, nil); err == nil {
		t.Error("a name with no /etc/passwd resolved")
	}
}
