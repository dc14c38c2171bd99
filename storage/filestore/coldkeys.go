package filestore

import (
	"encoding/binary"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// The keys of the cold tables. Each kind of record and each index has a
// kind byte, and every key encodes its fields so that comparing keys as
// bytes orders them as memstore orders the same records: strings are
// escaped (0x00 becomes 0x00 0xff) and end with 0x00 0x01, so that no key
// is a prefix of another and "ab" sorts before "abc"; integers are
// big-endian, signed ones with the sign bit flipped. The party index
// lists an escrow's parties newest first, so its time and ID are
// complemented: an ascending walk is memstore's descending one.
const (
	kindMeta     byte = 0x01 // the table's floors; one key
	kindEscrow   byte = 'E'  // escrow ID → escrow
	kindEntry    byte = 'J'  // journal Seq → entry
	kindAccount  byte = 'A'  // account, Seq → nothing: the account's entries
	kindEvent    byte = 'V'  // event Seq → event
	kindEscEvent byte = 'X'  // escrow ID, Seq → nothing: the escrow's events
	kindParty    byte = 'P'  // party, ^CreatedAt, ^ID, role → nothing
	kindRating   byte = 'R'  // escrow ID, rater → rating
	kindRatee    byte = 'Q'  // ratee, At, escrow ID, rater → nothing
	kindPair     byte = 'M'  // ratee, rater, month → monthly pair counter
	kindMark     byte = 'I'  // ratee, rater, item → item mark, or its removal
	kindTimer    byte = 'T'  // due time, escrow ID → timerSet or timerGone
)

// The values of a timer's key. A checkpoint files under timerSet the
// timer of each escrow it moves to a table whose rating window is still
// open, and, when a table under it files the same escrow at another time,
// that time under timerGone, which hides the older key as a newer record
// hides an older one. A timer is in the tables if its key's newest value
// is timerSet. This holds because an ended escrow does not start again
// (escrow.State.Terminal): one that came back to memory is ended at the
// next checkpoint too, which moves it, and its timer, to a table again.
var (
	timerSet  = []byte(nil)
	timerGone = []byte{1}
)

func appendStr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xff)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, 0, 1)
}

// appendStrDesc appends s so that byte order is the reverse of s's.
func appendStrDesc(b []byte, s string) []byte {
	start := len(b)
	b = appendStr(b, s)
	for i := start; i < len(b); i++ {
		b[i] = ^b[i]
	}
	return b
}

// readStr reads a string appendStr wrote, returning it and the rest.
func readStr(b []byte) (string, []byte, bool) {
	var out []byte
	for i := 0; i+1 < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		switch b[i+1] {
		case 1:
			if out == nil {
				return string(b[:i]), b[i+2:], true
			}
			return string(append(out, b[:i]...)), b[i+2:], true
		case 0xff:
			out = append(append(out, b[:i]...), 0)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

func readStrDesc(b []byte) (string, []byte, bool) {
	// The string ends at the complement of 0x00 0x01 that is not part of
	// an escaped 0x00 (0xff 0x00 complemented).
	for i := 0; i+1 < len(b); i++ {
		if b[i] != 0xff {
			continue
		}
		if b[i+1] == 0xfe {
			plain := make([]byte, i+2)
			for j := range plain {
				plain[j] = ^b[j]
			}
			s, _, ok := readStr(plain)
			return s, b[i+2:], ok
		}
		i++ // an escaped 0x00
	}
	return "", nil, false
}

func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func appendI64(b []byte, v int64) []byte { return appendU64(b, uint64(v)^(1<<63)) }

func readU64(b []byte) (uint64, []byte, bool) {
	if len(b) < 8 {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(b), b[8:], true
}

// nanos returns t as memstore orders it, so that the tables order times
// as memstore does.
func nanos(t time.Time) int64 { return memstore.UnixNano(t) }

// The keys are built by appending to dst, so that a checkpoint can build
// hundreds of thousands of them in one buffer; the functions without
// "append" build one alone.

func appendEscrowKey(dst []byte, id string) []byte {
	return appendStr(append(dst, kindEscrow), id)
}

func escrowKey(id string) []byte { return appendEscrowKey(nil, id) }

func appendSeqKey(dst []byte, kind byte, seq uint64) []byte { return appendU64(append(dst, kind), seq) }

func seqKey(kind byte, seq uint64) []byte { return appendSeqKey(nil, kind, seq) }

// appendUnderKey appends the key of seq filed under name in an index of
// kind.
func appendUnderKey(dst []byte, kind byte, name string, seq uint64) []byte {
	return appendU64(appendStr(append(dst, kind), name), seq)
}

func underKey(kind byte, name string, seq uint64) []byte {
	return appendUnderKey(nil, kind, name, seq)
}

func partyPrefix(party string) []byte { return appendStr([]byte{kindParty}, party) }

func appendPartyKey(dst []byte, party string, at int64, id string, role escrow.Role) []byte {
	b := appendI64(appendStr(append(dst, kindParty), party), at)
	for i := len(b) - 8; i < len(b); i++ {
		b[i] = ^b[i]
	}
	return append(appendStrDesc(b, id), byte(role))
}

func partyKey(party string, at int64, id string, role escrow.Role) []byte {
	return appendPartyKey(nil, party, at, id, role)
}

// readPartyKey returns the ID and the role in a key of the party index,
// given the length of its party prefix.
func readPartyKey(k []byte, prefix int) (at int64, id string, role escrow.Role, ok bool) {
	if len(k) < prefix+8 {
		return 0, "", 0, false
	}
	u, rest, _ := readU64(k[prefix:])
	at = int64(^u ^ (1 << 63))
	id, rest, ok = readStrDesc(rest)
	if !ok || len(rest) != 1 {
		return 0, "", 0, false
	}
	return at, id, escrow.Role(rest[0]), true
}

func appendRatingKey(dst []byte, escrowID, rater string) []byte {
	return appendStr(appendStr(append(dst, kindRating), escrowID), rater)
}

func ratingKey(escrowID, rater string) []byte { return appendRatingKey(nil, escrowID, rater) }

func rateePrefix(ratee string) []byte { return appendStr([]byte{kindRatee}, ratee) }

func appendRateeKey(dst []byte, ratee string, at int64, escrowID, rater string) []byte {
	return appendStr(appendStr(appendI64(appendStr(append(dst, kindRatee), ratee), at), escrowID), rater)
}

func rateeKey(ratee string, at int64, escrowID, rater string) []byte {
	return appendRateeKey(nil, ratee, at, escrowID, rater)
}

func appendPairKey(dst []byte, ratee, rater, month string) []byte {
	return appendStr(appendStr(appendStr(append(dst, kindPair), ratee), rater), month)
}

func pairKey(ratee, rater, month string) []byte { return appendPairKey(nil, ratee, rater, month) }

func appendMarkKey(dst []byte, ratee, rater, item string) []byte {
	return appendStr(appendStr(appendStr(append(dst, kindMark), ratee), rater), item)
}

func markKey(ratee, rater, item string) []byte { return appendMarkKey(nil, ratee, rater, item) }

func appendTimerKey(dst []byte, due int64, id string) []byte {
	return appendStr(appendI64(append(dst, kindTimer), due), id)
}

// readTimerKey returns the due time and the escrow ID in a timer's key.
func readTimerKey(k []byte) (due int64, id string, ok bool) {
	if len(k) < 1+8 || k[0] != kindTimer {
		return 0, "", false
	}
	u, rest, _ := readU64(k[1:])
	id, rest, ok = readStr(rest)
	return int64(u ^ (1 << 63)), id, ok && len(rest) == 0
}

var metaKey = []byte{kindMeta}

// prefixEnd returns the least key above every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: nothing is above it
}
