package sstable

import (
	"encoding/binary"
	"math/bits"
)

// hash64 returns the 64-bit hash of b that the bloom filter uses. It is
// part of the file format: changing it makes old filters answer wrongly.
func hash64(b []byte) uint64 {
	const (
		m1 = 0x9e3779b97f4a7c15
		m2 = 0xbf58476d1ce4e5b9
	)
	h := 0x2545f4914f6cdd1d ^ uint64(len(b))*m1
	for len(b) >= 8 {
		h ^= binary.LittleEndian.Uint64(b) * m2
		h = bits.RotateLeft64(h, 31) * m1
		b = b[8:]
	}
	if len(b) > 0 {
		var t uint64
		for i, c := range b {
			t |= uint64(c) << (8 * i)
		}
		h ^= t * m2
		h = bits.RotateLeft64(h, 31) * m1
	}
	// Finish as splitmix64 does, so that every input bit reaches every
	// output bit.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// bloomProbes returns the number of probes for bitsPerKey bits per key.
func bloomProbes(bitsPerKey int) int {
	k := int(float64(bitsPerKey) * 0.69) // ln 2
	return min(max(k, 1), 30)
}

// A firstBytes is a set of byte values, one bit each: the first bytes of
// the keys a filter holds.
type firstBytes [32]byte

// everyKey is the firstBytes of a filter that holds every key.
var everyKey = func() (s firstBytes) {
	for i := range s {
		s[i] = 0xff
	}
	return s
}()

func firstBytesOf(bs []byte) firstBytes {
	if bs == nil {
		return everyKey
	}
	var s firstBytes
	for _, b := range bs {
		s[b/8] |= 1 << (b % 8)
	}
	return s
}

// holds reports whether a filter over s holds key. The empty key is
// always held.
func (s *firstBytes) holds(key []byte) bool {
	return len(key) == 0 || s[key[0]/8]&(1<<(key[0]%8)) != 0
}

// appendBloom appends a filter over the keys whose hashes are given,
// with bitsPerKey bits per key, followed by the first bytes of the keys
// it holds and its number of probes.
func appendBloom(dst []byte, hashes []uint64, bitsPerKey int, first firstBytes) []byte {
	nbits := max(uint64(len(hashes))*uint64(bitsPerKey), 64)
	nbytes := (nbits + 7) / 8
	nbits = nbytes * 8
	start := len(dst)
	dst = append(dst, make([]byte, nbytes)...)
	f := dst[start:]
	k := bloomProbes(bitsPerKey)
	for _, h := range hashes {
		d := bits.RotateLeft64(h, 32)
		for range k {
			j := h % nbits
			f[j/8] |= 1 << (j % 8)
			h += d
		}
	}
	dst = append(dst, first[:]...)
	return append(dst, byte(k))
}

// A bloom is a filter read from a table: bits, the first bytes of the keys
// it holds, and the number of probes. The zero value has no filter and
// may contain every key.
type bloom []byte

// bloomTrailer is the size of what follows a filter's bits.
const bloomTrailer = len(firstBytes{}) + 1

// parseBloom checks the filter block b read from file offset off.
func parseBloom(b []byte, off int64) (bloom, error) {
	if len(b) < bloomTrailer+1 {
		return nil, corruptf(off, "filter block of %d bytes is too short", len(b))
	}
	if k := b[len(b)-1]; k < 1 || k > 30 {
		return nil, corruptf(off, "filter block has %d probes", k)
	}
	return bloom(b), nil
}

// holds reports whether the filter was built over key, if the table has
// key: a key it was not built over may be in the table all the same.
func (f bloom) holds(key []byte) bool {
	if len(f) == 0 {
		return false
	}
	first := (*firstBytes)(f[len(f)-bloomTrailer:])
	return first.holds(key)
}

// mayContain reports whether the table may hold key: false means it
// certainly does not.
func (f bloom) mayContain(key []byte) bool {
	if !f.holds(key) {
		return true
	}
	return f.mayContainHash(hash64(key))
}

// mayContainHash is mayContain for a key the filter holds, whose hash is h.
func (f bloom) mayContainHash(h uint64) bool {
	k := int(f[len(f)-1])
	bitsOf := f[:len(f)-bloomTrailer]
	nbits := uint64(len(bitsOf)) * 8
	d := bits.RotateLeft64(h, 32)
	for range k {
		j := h % nbits
		if bitsOf[j/8]&(1<<(j%8)) == 0 {
			return false
		}
		h += d
	}
	return true
}
