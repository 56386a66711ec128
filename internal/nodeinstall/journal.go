package nodeinstall

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

func (s stateDir) load(name string) (*journal, error) {
	b, err := os.ReadFile(s.journalPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", name, err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", name, err)
	}
	return &j, nil
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
