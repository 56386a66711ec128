//go:build unix

package nodeinstall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// privateDir makes d (mode 0700, owned by the running user) and refuses a
// symlink or a directory someone else owns.
func privateDir(d string) error {
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errors.New("is not a directory (a symlink is refused)")
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("belongs to uid %d, not to the installer (uid %d)", st.Uid, os.Geteuid())
	}
	if st.Mode&0o022 != 0 {
		// Anyone could have planted a journal or backup in it, which a
		// rollback would act on as root.
		return fmt.Errorf("is writable by group or others (mode %o): check its content and make it 0700 by hand", st.Mode&0o7777)
	}
	if st.Mode&0o077 != 0 {
		return unix.Chmod(d, 0o700)
	}
	return nil
}

func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
}

// ownFile: f is a regular file of the installer's user that nobody else
// can write.
func ownFile(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return errors.New("not a regular file")
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("owned by uid %d, not the installer's", st.Uid)
	case st.Mode&0o022 != 0:
		return errors.New("writable by group or others")
	}
	return nil
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// lockFile takes an exclusive flock on path, waiting until ctx ends.
type lockFile struct{ f *os.File }

func lock(ctx context.Context, path string) (*lockFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &lockFile{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: another run holds it: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (l *lockFile) unlock() {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
}
