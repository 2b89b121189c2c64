package output

import (
	"bytes"
	"fmt"
	"os"
	"sync"
)

// RotatingFile is an append-only file that, when a write would take it
// past Max bytes, is renamed to PATH.1 (replacing the previous backup) and
// started afresh. It cuts only after a newline, so JSON lines stay whole
// as long as a line is shorter than Max.
type RotatingFile struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens (appending to) path.
func OpenRotating(path string, max int64) (*RotatingFile, error) {
	r := &RotatingFile{path: path, max: max}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("events file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("events file: %w", err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	written := 0
	for r.max > 0 && r.size+int64(len(p)) > r.max {
		// Write up to the last newline that still fits (or, if none fits,
		// the first line), then rotate.
		cut := bytes.LastIndexByte(p[:min(int64(len(p)), max(r.max-r.size, 0))], '\n') + 1
		if cut == 0 && r.size == 0 {
			cut = bytes.IndexByte(p, '\n') + 1
			if cut == 0 {
				break // one line longer than Max: let it through whole
			}
		}
		n, err := r.f.Write(p[:cut])
		written += n
		if err != nil {
			return written, fmt.Errorf("events file: %w", err)
		}
		p = p[cut:]
		if err := r.rotate(); err != nil {
			return written, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	written += n
	if err != nil {
		return written, fmt.Errorf("events file: %w", err)
	}
	return written, nil
}

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("events file: %w", err)
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("events file: rotating: %w", err)
	}
	return r.open()
}

// Close closes the file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
