package nodeinstall

import (
	"errors"

	"golang.org/x/sys/unix"
)

// aclXattr holds a file's POSIX access ACL (setfacl). A replaced file gets
// the old one's, or the users and groups it names would lose (or, through
// the group bits that stand for the ACL's mask, gain) access to the key.
const aclXattr = "system.posix_acl_access"

// getACL returns fd's access ACL, nil when it has none (or the filesystem
// has no ACLs).
func getACL(fd int) ([]byte, error) {
	buf := make([]byte, 4096)
	n, err := unix.Fgetxattr(fd, aclXattr, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// setACL gives fd the access ACL acl (nothing when nil).
func setACL(fd int, acl []byte) error {
	if len(acl) == 0 {
		return nil
	}
	return unix.Fsetxattr(fd, aclXattr, acl, 0)
}
