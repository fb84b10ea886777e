package batch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrLocked means another process is running a batch with the same
// results file.
var ErrLocked = errors.New("batch: results file is in use by another run")

// outFile is a results file opened for a run: locked against other runs,
// its existing results read, its torn tail truncated, and every new result
// appended and synced before it counts as done.
type outFile struct {
	mu  sync.Mutex // serialises appends
	f   *os.File
	buf []byte
	// sync makes each append durable; it is os.File.Sync except in tests.
	sync func() error
}

// openOutFile opens (creating) path, reads its results and prepares it for
// appending.
func openOutFile(path string) (*outFile, *ResultsFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("batch: opening results: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, nil, err
	}
	rf, err := ReadResults(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%w (%s)", err, path)
	}
	if rf.Torn > 0 {
		if err := f.Truncate(rf.Size); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("batch: truncating the torn last line: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("batch: syncing results: %w", err)
		}
	}
	if _, err := f.Seek(rf.Size, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("batch: seeking results: %w", err)
	}
	return &outFile{f: f, sync: f.Sync}, rf, nil
}

// append writes r as one line with a single write and syncs the file: once
// it returns nil the result survives a crash of the process.
func (o *outFile) append(r Result) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, err := r.AppendLine(o.buf[:0])
	if err != nil {
		return err
	}
	o.buf = b
	if _, err := o.f.Write(b); err != nil {
		return fmt.Errorf("batch: writing result: %w", err)
	}
	if err := o.sync(); err != nil {
		return fmt.Errorf("batch: syncing result: %w", err)
	}
	return nil
}

func (o *outFile) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.f.Close() // closing releases the lock
}
