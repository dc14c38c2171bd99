package filestore

import (
	"fmt"
	"slices"
)

// The manifest names the segment records are appended to, so that Open
// can tell a deleted segment from one never written. It is a file header
// (manifestMagic) and one frame whose sequence number is that segment's
// start, with an empty payload. It is replaced, never edited: written to
// a temporary file, synced, renamed into place, the directory synced.
const (
	manifestName  = "MANIFEST"
	manifestMagic = "escrowMF"
)

// writeManifest makes the manifest name the segment starting at record
// start. If it fails after the rename, the manifest may name either
// segment, and the error wraps errLeftover.
func (s *Store) writeManifest(start uint64) error {
	tmp := s.path(manifestName + tmpSuffix)
	_ = s.fs.Remove(tmp) // left by a write that failed
	data := appendFrame(appendFileHeader(nil, manifestMagic), start, 0, nil)
	err := s.writeFile(tmp, data, nil)
	if err == nil {
		err = s.fs.Rename(tmp, s.path(manifestName))
		if err == nil {
			if err = s.syncDir(); err != nil {
				return fmt.Errorf("write manifest: %w (%w)", err, errLeftover)
			}
			return nil
		}
	}
	_ = s.fs.Remove(tmp)
	return fmt.Errorf("write manifest: %w", err)
}

// readManifest returns the start of the segment the manifest names.
func (s *Store) readManifest() (uint64, error) {
	data, err := s.fs.ReadFile(s.path(manifestName))
	if err != nil {
		return 0, fmt.Errorf("filestore: %w", err)
	}
	h, err := s.checkHeader(manifestName, data, manifestMagic, "")
	if err != nil {
		return 0, err
	}
	start, _, payload, size, ok := parseFrame(data[h.size:])
	if h.version == 0 || !ok || len(payload) != 0 || h.size+size != len(data) {
		return 0, s.corrupt(manifestName, 0, "damaged manifest")
	}
	return start, nil
}

// checkManifest checks that the segment the manifest names is there, and
// returns its start, 0 if there is no manifest.
func (s *Store) checkManifest(c dirContents) (uint64, error) {
	if !c.manifest {
		return 0, nil
	}
	start, err := s.readManifest()
	if err != nil {
		return 0, err
	}
	if !slices.Contains(c.segs, start) {
		return 0, s.corrupt(segName(start), 0, "log segment missing: the manifest names it as the newest")
	}
	return start, nil
}
