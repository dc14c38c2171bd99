package filestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/escrowkit/escrow/storage/filestore/internal/sstable"
)

// memFS is an in-memory fileSystem that models what a crash keeps. A
// file's contents are durable up to its last Sync; a name (created,
// renamed or removed) is durable once its directory is synced. crashImage
// returns the file system a machine would find after a crash at this
// moment, keeping some, all or none of what was not synced.
//
// Faults: the fault-th counted operation (a write, sync, create, rename,
// remove, truncate or directory sync, counting from 1) fails; a failing
// write first writes a random part of its bytes. With crashAfterFault,
// every operation after it fails too, as if the machine had stopped.
type memFS struct {
	mu      sync.Mutex
	names   map[string]*memFile // what the process sees
	durable map[string]*memFile // what survives a crash
	locked  map[string]int
	rng     *rand.Rand

	ops             int // counted operations so far
	fault           int
	crashAfterFault bool
	faulted         bool
	// failCreate fails every Create, as a read-only directory or a
	// process out of file descriptors does.
	failCreate bool
	// failCreateOf, if set, limits failCreate to names starting with it.
	failCreateOf string
	// points lists the kind of each counted operation, for tests that
	// loop over them.
	points []string
}

type memFile struct {
	data   []byte // what reads see
	synced []byte // what a crash keeps for sure
}

var errInjected = errors.New("injected I/O error")

func newMemFS(seed uint64) *memFS {
	return &memFS{names: map[string]*memFile{}, durable: map[string]*memFile{}, locked: map[string]int{},
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// step counts an operation and reports whether it must fail. It is called
// with mu held.
func (m *memFS) step(kind string) (fail bool) {
	m.ops++
	m.points = append(m.points, kind)
	switch {
	case m.faulted && m.crashAfterFault:
		return true
	case m.ops == m.fault:
		m.faulted = true
		return true
	}
	return false
}

func (m *memFS) MkdirAll(dir string) error { return nil }

func (m *memFS) Lock(dir string, shared bool) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// locked counts the shared holders of a directory; -1 is a writer.
	if n := m.locked[dir]; n < 0 || n > 0 && !shared {
		return nil, &LockedError{Dir: dir}
	}
	if shared {
		m.locked[dir]++
	} else {
		m.locked[dir] = -1
	}
	return closerFunc(func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.locked[dir] > 0 {
			m.locked[dir]--
		} else {
			m.locked[dir] = 0
		}
		return nil
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (m *memFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name := range m.names {
		if path.Dir(name) == dir {
			out = append(out, path.Base(name))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.names[name]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", name, errNotExist)
	}
	return bytes.Clone(f.data), nil
}

var errNotExist = errors.New("file does not exist")

func (m *memFS) Create(name string) (file, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.step("create") || m.failCreate && strings.HasPrefix(path.Base(name), m.failCreateOf) {
		return nil, errInjected
	}
	if _, ok := m.names[name]; ok {
		return nil, fmt.Errorf("create %s: file exists", name)
	}
	f := &memFile{}
	m.names[name] = f
	return &memHandle{m: m, f: f}, nil
}

func (m *memFS) OpenAppend(name string) (file, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.names[name]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", name, errNotExist)
	}
	return &memHandle{m: m, f: f}, nil
}

// OpenRead reads the file as it is now: tables are written once, synced,
// and renamed into place before they are read.
func (m *memFS) OpenRead(name string) (sstable.File, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.names[name]
	if !ok {
		return nil, 0, fmt.Errorf("open %s: %w", name, errNotExist)
	}
	return memReader{bytes.NewReader(bytes.Clone(f.data))}, int64(len(f.data)), nil
}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

func (m *memFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.step("rename") {
		return errInjected
	}
	f, ok := m.names[oldname]
	if !ok {
		return fmt.Errorf("rename %s: %w", oldname, errNotExist)
	}
	delete(m.names, oldname)
	m.names[newname] = f
	return nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.step("remove") {
		return errInjected
	}
	if _, ok := m.names[name]; !ok {
		return fmt.Errorf("remove %s: %w", name, errNotExist)
	}
	delete(m.names, name)
	return nil
}

func (m *memFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.step("syncdir") {
		return errInjected
	}
	for name := range m.durable {
		if path.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, f := range m.names {
		if path.Dir(name) == dir {
			m.durable[name] = f
		}
	}
	return nil
}

// memHandle is an open memFile.
type memHandle struct {
	m      *memFS
	f      *memFile
	closed bool
}

func (h *memHandle) Write(p []byte) (int, error) {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.closed {
		return 0, errors.New("write to a closed file")
	}
	if h.m.step("write") {
		n := 0
		if !h.m.crashAfterFault || h.m.ops == h.m.fault {
			n = h.m.rng.IntN(len(p) + 1) // a torn write
		}
		h.f.data = append(h.f.data, p[:n]...)
		return n, errInjected
	}
	h.f.data = append(h.f.data, p...)
	return len(p), nil
}

func (h *memHandle) Sync() error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.m.step("sync") {
		return errInjected
	}
	h.f.synced = bytes.Clone(h.f.data)
	return nil
}

func (h *memHandle) Truncate(size int64) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.m.step("truncate") {
		return errInjected
	}
	if size < int64(len(h.f.data)) {
		h.f.data = h.f.data[:size:size]
	}
	return nil
}

func (h *memHandle) Close() error {
	h.closed = true
	return nil
}

// crashImage returns what a machine would find after crashing now: the
// durable names, each with its synced contents plus, chosen at random, none,
// a prefix or all of the bytes written after its last sync, those last
// possibly with a hole where a page did not reach the disk.
func (m *memFS) crashImage(rng *rand.Rand) *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := newMemFS(rng.Uint64())
	names := make([]string, 0, len(m.durable))
	for name := range m.durable {
		names = append(names, name)
	}
	slices.Sort(names) // the same choices for the same seed
	for _, name := range names {
		f := m.durable[name]
		data := bytes.Clone(f.synced)
		if extra, ok := bytes.CutPrefix(f.data, f.synced); ok && len(extra) > 0 {
			switch rng.IntN(4) {
			case 0: // nothing unsynced survived
			case 1:
				data = append(data, extra[:rng.IntN(len(extra)+1)]...)
			case 2:
				data = append(data, extra...)
			case 3: // all of it but one page, which reads as zeros
				at := len(data)
				data = append(data, extra...)
				hole := at + rng.IntN(len(extra))
				clear(data[hole:min(len(data), hole+512)])
			}
		} else if !ok && rng.IntN(2) == 0 {
			data = bytes.Clone(f.data) // a truncation that reached the disk
		}
		nf := &memFile{data: data, synced: bytes.Clone(data)}
		c.names[name], c.durable[name] = nf, nf
	}
	return c
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
