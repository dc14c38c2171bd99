package filestore

import "encoding/binary"

// A TornTail is the damaged end of a store's last log segment: a write
// that a crash cut short, whose records were never acknowledged, or the
// last record damaged in place, which looks the same. Open drops it
// (truncates the segment) before it appends; a read-only store skips it
// and leaves the file as it is.
type TornTail struct {
	File   string // path of the segment
	Offset int64  // where the damage starts: the segment's valid length
	Bytes  int64  // how many bytes were dropped
	// FirstSeq to LastSeq are the records in the dropped bytes, as far as
	// their frames can still be read: the header of the first, and any
	// intact record after it. Both are 0 if the bytes hold no record that
	// can be told, such as zeros a file system left after a crash.
	FirstSeq, LastSeq uint64
}

// tornTail describes the torn end of segment data from offset end, where
// record want was expected.
func tornTail(file string, data []byte, end int, want uint64) TornTail {
	t := TornTail{File: file, Offset: int64(end), Bytes: int64(len(data) - end)}
	tail := data[end:]
	if len(tail) >= 16 && binary.LittleEndian.Uint64(tail[8:]) == want {
		t.FirstSeq, t.LastSeq = want, want
	}
	// Recovery has made sure that no later write follows, so an intact
	// record here belongs to the torn write.
	for i := 1; i+frameHeader <= len(tail); i++ {
		if seq, _, _, _, ok := parseFrame(tail[i:]); ok && seq >= want {
			t.FirstSeq, t.LastSeq = want, max(t.LastSeq, seq)
		}
	}
	return t
}
