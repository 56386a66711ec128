package nodeinstall

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Journal phases, in order. A journal left behind by a killed run is
// finished when it reached phaseVerified and rolled back otherwise.
const (
	phasePrepared    = "prepared"     // temp and backup names chosen; files may be partly written
	phaseCommitting  = "committing"   // backups and temps complete and synced; renames under way
	phaseInstalled   = "installed"    // every new file in place
	phaseReloaded    = "reloaded"     // the service was reloaded with the new files
	phaseVerified    = "verified"     // the node serves the new certificate; only cleanup left
	phaseRollingBack = "rolling_back" // restoring the old files
)

// journalFile is one file of the set.
type journalFile struct {
	Path    string `json:"path"`    // resolved target path
	Temp    string `json:"temp"`    // temp file in the target's directory
	Existed bool   `json:"existed"` // false: rollback removes the file
	Backup  string `json:"backup,omitempty"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	Mode    uint32 `json:"mode"`
	ACL     []byte `json:"acl,omitempty"` // POSIX access ACL (Linux), restored with the file
}

// journal is the record of one run, kept at <state>/journal/<name>.json and
// fsynced before each phase's first irreversible step.
type journal struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	Generation  string `json:"generation"`
	Phase       string `json:"phase"`
	Service     string `json:"service,omitempty"`
	WasActive   bool   `json:"wasActive"`
	// ReloadStarted: the service may hold the new files, so a rollback
	// reloads it again (or starts it if our reload stopped it).
	ReloadStarted bool `json:"reloadStarted"`
	// Restore: the backups are complete, so a rollback copies them back
	// (set from phaseCommitting on; before that the targets are untouched).
	Restore bool          `json:"restore"`
	Files   []journalFile `json:"files,omitempty"`

	// Windows: what to restore.
	Site      string `json:"site,omitempty"`
	OldThumb  string `json:"oldThumb,omitempty"`
	OldStore  string `json:"oldStore,omitempty"`
	NewThumb  string `json:"newThumb,omitempty"`
	NewStore  string `json:"newStore,omitempty"`
	HadNew    bool   `json:"hadNew"`
	Bound     bool   `json:"bound"`
	Imported  bool   `json:"imported"`
	Committed bool   `json:"committed"`
}

// stateDir is the installer's private directory.
type stateDir string

func (s stateDir) journalPath(name string) string {
	return filepath.Join(string(s), "journal", name+".json")
}
func (s stateDir) backupDir(name string) string {
	return filepath.Join(string(s), "backup", name)
}
func (s stateDir) lockPath(name string) string {
	return filepath.Join(string(s), "locks", name+".lock")
}

// ensure creates the state directory and its subdirectories root-only and
// refuses one that is a symlink or belongs to someone else.
func (s stateDir) ensure() error {
	for _, d := range []string{string(s), filepath.Join(string(s), "journal"), filepath.Join(string(s), "locks"), filepath.Join(string(s), "backup")} {
		if err := privateDir(d); err != nil {
			return fmt.Errorf("prepare state directory %s: %w", d, err)
		}
	}
	return nil
}

// load reads name's journal, nil when there is none. A rollback does what
// the journal says as root (it writes its backups over its paths), so a
// journal is trusted only when it is the installer's own file (not a
// symlink, owned by the installer's user, writable by nobody else) and
// names only what a run of name writes: temps beside their targets, backups
// in name's backup directory.
func (s stateDir) load(name string) (*journal, error) {
	path := s.journalPath(name)
	f, err := openNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", name, err)
	}
	defer f.Close()
	if err := ownFile(f); err != nil {
		return nil, fmt.Errorf("journal %s refused (%w): remove it by hand after checking the files it names", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", name, err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("journal %s is unreadable (%w): remove it by hand after checking the files of %s and their .certferry-%s.*.tmp temps", path, err, name, name)
	}
	if err := s.checkJournal(name, &j); err != nil {
		return nil, fmt.Errorf("journal %s refused: %w: remove it by hand after checking the files it names", path, err)
	}
	return &j, nil
}

var generationPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}$`)

// checkJournal: the journal is name's and names only what a run of name
// writes.
func (s stateDir) checkJournal(name string, j *journal) error {
	if j.Name != name {
		return fmt.Errorf("it is the journal of %q", sanitize(j.Name, 70))
	}
	if len(j.Files) > 0 && !generationPattern.MatchString(j.Generation) {
		return errors.New("bad generation")
	}
	for i, f := range j.Files {
		if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path || hasDotSegment(f.Path) {
			return fmt.Errorf("file %d: path is not clean and absolute", i)
		}
		tb := filepath.Base(f.Temp)
		if filepath.Dir(f.Temp) != filepath.Dir(f.Path) || !strings.HasPrefix(tb, ".certferry-"+name+".") || !strings.HasSuffix(tb, ".tmp") {
			return fmt.Errorf("file %d: temp %s is not an installer temp beside %s", i, sanitize(f.Temp, 200), sanitize(f.Path, 200))
		}
		if f.Existed && f.Backup != filepath.Join(s.backupDir(name), j.Generation, strconv.Itoa(i)) {
			return fmt.Errorf("file %d: backup %s is not in the backup directory of %s", i, sanitize(f.Backup, 200), name)
		}
		if f.Mode&^0o7777 != 0 {
			return fmt.Errorf("file %d: bad mode", i)
		}
	}
	return nil
}

// save writes j atomically and durably: temp file, fsync, rename, fsync dir.
func (s stateDir) save(j *journal) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode journal of %s: %w", j.Name, err)
	}
	dst := s.journalPath(j.Name)
	if err := writeFileDurable(dst, b); err != nil {
		return fmt.Errorf("write journal of %s: %w", j.Name, err)
	}
	return nil
}

func (s stateDir) remove(name string) error {
	if err := os.Remove(s.journalPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove journal of %s: %w", name, err)
	}
	return syncDir(filepath.Dir(s.journalPath(name)))
}

// writeFileDurable replaces path with data via a temp file in the same
// (private) directory.
func writeFileDurable(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
