package filestore

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// A frame holds one record in the log (one committed transaction) or one
// chunk of a snapshot:
//
//	offset  size  field
//	0       4     payload length, little-endian
//	4       4     CRC-32C (Castagnoli) of bytes 0–3, 8–19 and the payload
//	8       8     sequence number
//	16      4     back: the sequence number minus that of the first record
//	              written to the file in the same write and fsync
//	20      n     payload
//
// back lets recovery tell a crash from corruption. The records of one
// batch reach the disk in any order until its fsync returns, and the next
// batch is written only after that, so damage followed by a valid record
// of the same batch is a torn write, while damage followed by a record of a
// later batch is damage to synced data.
const frameHeader = 20

// maxPayload bounds a frame's payload, so that a corrupt length cannot ask
// for an absurd allocation or scan. Recovery refuses a longer frame, so
// nothing may write one: Update refuses a transaction whose record would
// be longer, and a snapshot cuts its chunks to fit. It is a variable only
// so that tests can lower it; nothing else changes it.
var maxPayload uint32 = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends a frame holding payload to dst.
func appendFrame(dst []byte, seq uint64, back uint32, payload []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, back)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], frameCRC(dst[start:]))
	return dst
}

// frameCRC returns the checksum of the frame at the start of b, whose
// header and payload b holds in full.
func frameCRC(b []byte) uint32 {
	n := binary.LittleEndian.Uint32(b)
	c := crc32.Update(0, castagnoli, b[0:4])
	return crc32.Update(c, castagnoli, b[8:frameHeader+int(n)])
}

// parseFrame reads the frame at the start of b. ok is false if b is too
// short to hold it or its checksum does not match.
func parseFrame(b []byte) (seq uint64, back uint32, payload []byte, size int, ok bool) {
	if len(b) < frameHeader {
		return 0, 0, nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxPayload || int(n) > len(b)-frameHeader {
		return 0, 0, nil, 0, false
	}
	if binary.LittleEndian.Uint32(b[4:]) != frameCRC(b) {
		return 0, 0, nil, 0, false
	}
	seq = binary.LittleEndian.Uint64(b[8:])
	back = binary.LittleEndian.Uint32(b[16:])
	size = frameHeader + int(n)
	return seq, back, b[frameHeader:size:size], size, true
}

// laterBatch reports whether b, which holds damage at offset 0 where the
// record numbered want should have been, has a valid frame after the
// damage that belongs to a later batch than want's. It tries every offset,
// so it is slow on long inputs; recovery calls it only on damage.
func laterBatch(b []byte, want uint64) (at int, found bool) {
	for i := 1; i+frameHeader <= len(b); i++ {
		seq, back, _, _, ok := parseFrame(b[i:])
		if ok && seq >= want && seq-uint64(back) > want {
			return i, true
		}
	}
	return 0, false
}

// A file header starts every log segment and snapshot written by format
// version 2 and later:
//
//	offset  size  field
//	0       8     magic: segMagic or snapMagic
//	8       4     format version, little-endian
//	12      4     CRC-32C of bytes 0–11
//
// Version 1 files have none: a segment starts with its first frame, whose
// length field can never spell segMagic, and a snapshot with snapMagicV1.
const (
	segMagic       = "escrowLG"
	snapMagic      = "escrowSN"
	snapMagicV1    = "escsnap1"
	fileHeaderSize = 16
)

// formatVersion is the format this release writes. It reads every version
// from 1 up to it.
const formatVersion = 5

// appendFileHeader appends a header for a file of the current version.
func appendFileHeader(dst []byte, magic string) []byte {
	start := len(dst)
	dst = append(dst, magic...)
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// A fileHeader is what parseFileHeader finds at the start of a file.
type fileHeader struct {
	version uint32 // 0 if the file holds no header yet
	size    int    // bytes before the first frame
	reason  string // why the header is damaged, if it is
}

// parseFileHeader reads the header of a file that begins with magic, or,
// if it does not, is of version 1 and begins with magicV1 (empty for a
// segment). A file too short to hold a whole header that begins as one
// was torn while it was created: it holds no record, and version 0.
func parseFileHeader(data []byte, magic, magicV1 string) fileHeader {
	n := min(len(data), len(magic))
	switch {
	case string(data[:n]) != magic[:n] || (n == 0 && magicV1 != ""):
		if !bytes.HasPrefix(data, []byte(magicV1)) {
			return fileHeader{reason: "not a store file"}
		}
		return fileHeader{version: 1, size: len(magicV1)}
	case len(data) < fileHeaderSize:
		return fileHeader{}
	case binary.LittleEndian.Uint32(data[12:]) != crc32.Checksum(data[:12], castagnoli):
		return fileHeader{reason: "damaged file header"}
	}
	return fileHeader{version: binary.LittleEndian.Uint32(data[8:]), size: fileHeaderSize}
}
