//go:build unix

package nodeinstall

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// under reports whether p lies strictly under one of dirs.
func under(p string, dirs ...string) bool {
	for _, d := range dirs {
		if d != "" && strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// resolvePath checks p against the allowed prefixes and the state
// directory, then resolves its existing directories: a symlinked parent is
// accepted only when it resolves inside the prefixes too (RHEL's
// /etc/ssl/certs -> /etc/pki/tls/certs), and the target itself must not be
// a symlink. The result has no symlink left in it; later steps walk it with
// O_NOFOLLOW, so a symlink planted afterwards is refused, not followed.
func resolvePath(p string, prefixes []string, state string) (string, error) {
	c := filepath.Clean(p)
	if c != p || !filepath.IsAbs(c) || hasDotSegment(p) {
		return "", fmt.Errorf("%s is not a clean absolute path", p)
	}
	if !under(c, prefixes...) {
		return "", fmt.Errorf("%s is not under the allowed prefixes (%s)", c, strings.Join(prefixes, ":"))
	}
	rstate, err := filepath.EvalSymlinks(state)
	if err != nil {
		return "", fmt.Errorf("resolve state directory %s: %w", state, err)
	}
	if c == state || c == rstate || under(c, state, rstate) {
		return "", fmt.Errorf("%s is inside the installer's state directory", c)
	}
	dir, rest := filepath.Dir(c), ""
	for {
		if _, err := os.Lstat(dir); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("inspect %s: %w", dir, err)
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = filepath.Dir(dir)
	}
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	resolved := filepath.Join(rdir, rest, filepath.Base(c))
	ok := under(resolved, prefixes...)
	for _, pr := range prefixes {
		if rp, err := filepath.EvalSymlinks(pr); err == nil && under(resolved, rp) {
			ok = true
		}
	}
	if !ok {
		return "", fmt.Errorf("%s resolves through a symlink to %s, outside the allowed prefixes", c, resolved)
	}
	if resolved == rstate || under(resolved, state, rstate) {
		return "", fmt.Errorf("%s resolves into the installer's state directory", c)
	}
	if fi, err := os.Lstat(resolved); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return "", fmt.Errorf("%s is a symlink; the installer never writes through one", c)
	}
	return resolved, nil
}

// openDir opens dir walking every component with O_NOFOLLOW, so no symlink
// is followed; with create, missing directories are made (0755).
func openDir(dir string, create bool) (int, error) {
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /: %w", err)
	}
	for comp := range strings.SplitSeq(strings.Trim(dir, "/"), "/") {
		if comp == "" {
			continue
		}
		nfd, err := unix.Openat(fd, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, comp, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				nfd, err = unix.Openat(fd, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("open directory %s: %s is a symlink or not a directory", dir, comp)
		}
		if err != nil {
			return -1, fmt.Errorf("open directory %s: %w", dir, err)
		}
		fd = nfd
	}
	return fd, nil
}

// maxExisting bounds what the installer reads of an existing target (and
// so backs up): certificates, keys and keystores are far smaller.
const maxExisting = 16 << 20

// existing is a target's state before the run.
type existing struct {
	content  []byte
	uid, gid int
	mode     uint32
	acl      []byte // POSIX access ACL, nil when none
}

// inspect reads the regular file name in dirfd, nil when there is none; a
// symlink or anything but a regular file is refused.
func inspect(dirfd int, path string) (*existing, error) {
	name := filepath.Base(path)
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return nil, fmt.Errorf("%s is a symlink; the installer never writes through one", path)
	default:
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil || fst.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s changed while being read", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxExisting+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxExisting {
		// Its backup would be cut, and a rollback would put back a cut file.
		return nil, fmt.Errorf("%s is larger than %d MiB; the installer does not replace it", path, maxExisting>>20)
	}
	acl, err := getACL(fd)
	if err != nil {
		return nil, fmt.Errorf("read the ACL of %s: %w", path, err)
	}
	return &existing{content: b, uid: int(fst.Uid), gid: int(fst.Gid), mode: uint32(fst.Mode) & 0o7777, acl: acl}, nil
}

// writeNew creates name in dirfd exclusively (never through a symlink),
// 0600 while it is written, then sets owner, mode and ACL (nil: none), and
// syncs it.
func writeNew(dirfd int, name string, data []byte, uid, gid int, mode uint32, acl []byte) (err error) {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", name, cerr)
		}
		if err != nil {
			_ = unix.Unlinkat(dirfd, name, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s to %d:%d: %w", name, uid, gid, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	if err := setACL(fd, acl); err != nil {
		return fmt.Errorf("set the ACL of %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// removeRegular unlinks name in dirfd when it is a regular file (unlink
// never follows a symlink; anything else we did not create is left alone).
func removeRegular(dirfd int, name string) error { return removeAt(dirfd, name, false) }

// removeAt is removeRegular that also removes a symlink when orLink (at a
// temp name the journal chose: whatever is there was planted).
func removeAt(dirfd int, name string, orLink bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", name, err)
	}
	if typ := st.Mode & unix.S_IFMT; typ != unix.S_IFREG && (!orLink || typ != unix.S_IFLNK) {
		return fmt.Errorf("%s is not a regular file; left in place", name)
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// owners resolves the Owner and Group options: -1 when not given.
func owners(p Params) (uid, gid int, err error) {
	uid, gid = -1, -1
	if p.Owner != "" {
		if n, err := strconv.Atoi(p.Owner); err == nil {
			uid = n
		} else if u, err := user.Lookup(p.Owner); err == nil {
			uid, _ = strconv.Atoi(u.Uid)
		} else {
			return 0, 0, fmt.Errorf("owner %s: no such user on this node", p.Owner)
		}
	}
	if p.Group != "" {
		if n, err := strconv.Atoi(p.Group); err == nil {
			gid = n
		} else if g, err := user.LookupGroup(p.Group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else {
			return 0, 0, fmt.Errorf("group %s: no such group on this node", p.Group)
		}
	}
	return uid, gid, nil
}

// planned is one target with its resolved path, old state and the owner
// and mode the new file gets.
type planned struct {
	target
	resolved string
	old      *existing
	uid, gid int
	mode     uint32
	acl      []byte
}

// plan resolves every target, reads what is there and decides owner and
// mode: the options; else the existing file's; else root, 0644 for
// certificates and 0600 (0640 with Group) for files holding a key.
func plan(p Params, ts []target, state string) ([]planned, error) {
	uid, gid, err := owners(p)
	if err != nil {
		return nil, err
	}
	out := make([]planned, 0, len(ts))
	seen := map[string]string{}
	for _, t := range ts {
		r, err := resolvePath(t.Path, p.AllowedPrefixes, state)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[r]; dup {
			return nil, fmt.Errorf("%s and %s are the same file (%s)", other, t.Path, r)
		}
		seen[r] = t.Path
		pl := planned{target: t, resolved: r}
		if fd, err := openDir(filepath.Dir(r), false); err == nil {
			pl.old, err = inspect(fd, r)
			unix.Close(fd)
			if err != nil {
				return nil, err
			}
		} else if !errors.Is(err, unix.ENOENT) {
			return nil, err
		}
		pl.uid, pl.gid = uid, gid
		if pl.old != nil {
			if pl.uid < 0 {
				pl.uid = pl.old.uid
			}
			if pl.gid < 0 {
				pl.gid = pl.old.gid
			}
		} else {
			if pl.uid < 0 {
				pl.uid = os.Geteuid()
			}
			if pl.gid < 0 {
				pl.gid = os.Getegid()
			}
		}
		opt := p.CertMode
		if t.Kind == kindKey {
			opt = p.KeyMode
		}
		switch m, given := modeOf(opt); {
		case given:
			pl.mode = m
		case pl.old != nil:
			pl.mode = pl.old.mode
		case t.Kind == kindCert:
			pl.mode = 0o644
		case p.Group != "":
			pl.mode = 0o640
		default:
			pl.mode = 0o600
		}
		if pl.old != nil && pl.mode == pl.old.mode {
			// The mode is kept, so is the ACL it goes with (a mode
			// option that changes it replaces both).
			pl.acl = pl.old.acl
		}
		out = append(out, pl)
	}
	return out, nil
}

// unchanged: every file already holds the new content with the planned
// owner and mode.
func unchanged(ps []planned) bool {
	for _, pl := range ps {
		if pl.old == nil || pl.old.uid != pl.uid || pl.old.gid != pl.gid || pl.old.mode != pl.mode || !bytes.Equal(pl.old.acl, pl.acl) {
			return false
		}
		if pl.same != nil {
			if !pl.same(pl.old.content) {
				return false
			}
		} else if !bytes.Equal(pl.old.content, pl.Content) {
			return false
		}
	}
	return true
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// installSet installs the planned files as one transaction: journal, then
// backups of the old files (in the state directory), temp files beside the
// targets, then the renames. On error the set is rolled back before
// returning (the journal then says whether any rename happened: Restore);
// on success the journal (phase installed) is the caller's to finish or
// roll back.
func (e *Engine) installSet(ctx context.Context, name, fingerprint, service string, ps []planned) (*journal, error) {
	sd := e.state()
	gen := time.Now().UTC().Format("20060102T150405Z") + "-" + randomSuffix()
	j := &journal{Name: name, Fingerprint: fingerprint, Generation: gen, Phase: phasePrepared, Service: service}
	for i, pl := range ps {
		jf := journalFile{Path: pl.resolved, Temp: filepath.Join(filepath.Dir(pl.resolved), ".certferry-"+name+"."+randomSuffix()+".tmp")}
		if pl.old != nil {
			jf.Existed, jf.UID, jf.GID, jf.Mode, jf.ACL = true, pl.old.uid, pl.old.gid, pl.old.mode, pl.old.acl
			jf.Backup = filepath.Join(sd.backupDir(name), gen, strconv.Itoa(i))
		}
		j.Files = append(j.Files, jf)
	}
	if err := e.save(j); err != nil {
		return nil, err
	}
	e.at("prepared")
	fail := func(err error) (*journal, error) {
		if rerr := e.rollbackFiles(ctx, j); rerr != nil {
			return j, errors.Join(err, rerr)
		}
		return j, err
	}
	if err := privateDir(sd.backupDir(name)); err != nil {
		return fail(fmt.Errorf("prepare backup directory: %w", err))
	}
	if err := privateDir(filepath.Join(sd.backupDir(name), gen)); err != nil {
		return fail(fmt.Errorf("prepare backup directory: %w", err))
	}
	bfd, err := openDir(filepath.Join(sd.backupDir(name), gen), false)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(bfd)
	for i, pl := range ps {
		if pl.old == nil {
			continue
		}
		if err := writeNew(bfd, strconv.Itoa(i), pl.old.content, pl.old.uid, pl.old.gid, pl.old.mode, pl.old.acl); err != nil {
			return fail(fmt.Errorf("back up %s: %w", pl.resolved, err))
		}
		e.at("backup")
	}
	if err := unix.Fsync(bfd); err != nil {
		return fail(fmt.Errorf("sync backups: %w", err))
	}
	for i, pl := range ps {
		fd, err := openDir(filepath.Dir(pl.resolved), true)
		if err != nil {
			return fail(err)
		}
		err = writeNew(fd, filepath.Base(j.Files[i].Temp), pl.Content, pl.uid, pl.gid, pl.mode, pl.acl)
		unix.Close(fd)
		if err != nil {
			return fail(fmt.Errorf("write %s: %w", pl.resolved, err))
		}
		e.at("temp")
	}
	j.Phase, j.Restore = phaseCommitting, true
	if err := e.save(j); err != nil {
		// No target was renamed: the rollback only removes the temps.
		j.Phase, j.Restore = phasePrepared, false
		return fail(err)
	}
	e.at("committing")
	for _, jf := range j.Files {
		if err := renameInto(jf.Temp, jf.Path); err != nil {
			return fail(err)
		}
		e.at("renamed")
	}
	j.Phase = phaseInstalled
	if err := e.save(j); err != nil {
		return fail(err)
	}
	e.at("installed")
	return j, nil
}

// renameInto renames temp over path inside their (shared) directory,
// refusing a symlink at either name, and syncs the directory.
func renameInto(temp, path string) error {
	fd, err := openDir(filepath.Dir(path), false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, filepath.Base(path), &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is no longer a regular file (a symlink is refused)", path)
	}
	if err := unix.Fstatat(fd, filepath.Base(temp), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("temp file for %s is missing or not a regular file", path)
	}
	if err := unix.Renameat(fd, filepath.Base(temp), fd, filepath.Base(path)); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("sync directory of %s: %w", path, err)
	}
	return nil
}

// rollbackFiles puts every file of j back as it was: from the backups when
// they are complete (Restore), removing files that did not exist, and
// removes every temp file. It is idempotent, so a run killed while rolling
// back is finished by the next one.
func (e *Engine) rollbackFiles(ctx context.Context, j *journal) error {
	sd := e.state()
	var errs []error
	if j.Phase != phaseRollingBack {
		// The mark is informational (any phase but verified rolls back):
		// a state filesystem that is full must not stop the restore, nor
		// leave temps holding the new key beside the targets.
		phase := j.Phase
		j.Phase = phaseRollingBack
		if err := e.save(j); err != nil {
			j.Phase = phase
			e.say("rolling back without a journal update: %v", err)
		}
	}
	e.at("rolling_back")
	for _, jf := range j.Files {
		if err := restoreOne(jf, j.Restore); err != nil {
			errs = append(errs, err)
		}
		e.at("restored")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("roll back files: %w", err)
	}
	// The files are back: the journal's work is done even if the service
	// does not take them (that is reported, not retried).
	serr := e.restoreService(ctx, j)
	if err := sd.remove(j.Name); err != nil {
		return err
	}
	if err := sd.prune(j.Name, ""); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("%w: %w", errServiceRestore, serr)
	}
	return nil
}

func restoreOne(jf journalFile, restore bool) error {
	dir, base, tmp := filepath.Dir(jf.Path), filepath.Base(jf.Path), filepath.Base(jf.Temp)
	fd, err := openDir(dir, false)
	if errors.Is(err, unix.ENOENT) {
		return nil // the directory was never made: nothing to undo
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := removeAt(fd, tmp, true); err != nil {
		return err
	}
	if !restore {
		return nil // no rename happened: the target is untouched
	}
	if !jf.Existed {
		return removeRegular(fd, base)
	}
	old, err := readBackup(jf)
	if err != nil {
		return err
	}
	if cur, err := inspect(fd, jf.Path); err == nil && cur != nil && bytes.Equal(cur.content, old) &&
		cur.uid == jf.UID && cur.gid == jf.GID && cur.mode == jf.Mode && bytes.Equal(cur.acl, jf.ACL) {
		return nil
	}
	if err := writeNew(fd, tmp, old, jf.UID, jf.GID, jf.Mode, jf.ACL); err != nil {
		return fmt.Errorf("restore %s: %w", jf.Path, err)
	}
	if err := renameInto(jf.Temp, jf.Path); err != nil {
		_ = removeRegular(fd, tmp)
		return fmt.Errorf("restore %s: %w", jf.Path, err)
	}
	return nil
}

// readBackup reads jf's backup, which must be what installSet wrote: a
// regular file with the journal's owner and mode, in directories only the
// installer can write (the rollback copies it over jf.Path as root).
func readBackup(jf journalFile) ([]byte, error) {
	path := jf.Backup
	for _, d := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			return nil, fmt.Errorf("read backup %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
			return nil, fmt.Errorf("read backup %s: %s is not the installer's private directory", path, d)
		}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read backup %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("read backup %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != jf.UID || int(st.Gid) != jf.GID || uint32(st.Mode)&0o7777 != jf.Mode {
		return nil, fmt.Errorf("read backup %s: not the backup the installer wrote (owner or mode changed)", path)
	}
	return io.ReadAll(f)
}

// prune removes every backup generation of name except keep ("" removes all).
func (s stateDir) prune(name, keep string) error {
	dir := s.backupDir(name)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list backups of %s: %w", name, err)
	}
	var errs []error
	for _, e := range ents {
		if e.Name() == keep {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("prune backup %s of %s: %w", e.Name(), name, err))
		}
	}
	return errors.Join(errs...)
}
