// Package sstable reads and writes immutable sorted tables of key/value
// pairs: the files in which the file store keeps cold history (finished
// escrows, the journal, events, ratings) so that memory stays bounded
// however much history there is.
//
// A Writer takes keys in strictly increasing order and writes a table. Open
// reads only the table's footer, its top-level index and its bloom filter;
// every other block is read on demand with ReadAt through a Cache, a
// bounded LRU shared by all open tables. A Table and a Cache are safe for
// concurrent use; an Iter is not, so each goroutine uses its own.
//
// # Memory
//
// An open table keeps in memory, outside the cache, its top-level index
// (one entry per index block: a key and two varints, a few KB per GB of
// table with the default block size) and its bloom filter
// (BloomBitsPerKey/8 bytes per key: 1.25 bytes with the default of 10, so
// 1.25 MB per million records). Table.MemBytes reports both. Everything
// else it reads is held by the cache, or by an Iter (its current index and
// data block) while it is positioned there. A Writer keeps 8 bytes per key
// (the key's hash, for the filter) until Close, besides the blocks it is
// building.
//
// # Format
//
// All integers are little-endian; "varint" means encoding/binary's
// unsigned varint. A table is a sequence of blocks followed by a footer:
//
//	data and index blocks, in the order written
//	filter block (absent if the table has no filter)
//	top-level index block
//	footer (56 bytes)
//
// Every block is followed by a 4-byte trailer, the CRC-32C (Castagnoli) of
// the block's bytes; a handle to a block (its offset and length, the
// length not counting the trailer) therefore names length+4 bytes of the
// file. The blocks and the footer tile the file: every byte of a table is
// covered by some checksum.
//
// Data blocks and index blocks have one layout, a sequence of entries
// followed by restart points:
//
//	entry:   varint shared, varint unshared, varint value length,
//	         key[shared:] (unshared bytes), value
//	restart: uint32 offset of an entry within the block
//	block:   entries, restarts, uint32 number of restarts
//
// An entry's key is the first shared bytes of the previous entry's key
// followed by the unshared bytes it stores (prefix compression). Every
// 16th entry, starting with the first, is a restart point: it stores its
// whole key (shared is 0) and the restart array lists its offset, so a
// search can binary-search the restart points and then scan at most 16
// entries. Keys are strictly increasing within and across blocks. A data
// block is closed once its size reaches WriterOptions.BlockSize (16 KiB
// by default), so a block exceeds that size by at most its last entry; a
// record larger than the block size gets a block of its own.
//
// The per-record cost on disk is therefore the key's unshared bytes, the
// value, three varints (3 to 5 bytes for keys and values under 16 KiB),
// 4/16 bytes of restart array, BloomBitsPerKey/8 bytes of filter, and a
// share of the index (about one entry per data block). A record of a
// 16-byte key and a 200-byte value takes 220 bytes. Values are stored as
// given; nothing is compressed beyond shared key prefixes.
//
// An index block's entries map a key to a block handle, encoded as the
// value: varint offset, varint length. A second-level index block has one
// entry per data block, whose key is a separator S with
//
//	last key of the block <= S < first key of the next block
//
// (the shortest such key the writer finds; for the table's last block, its
// last key). A key K can thus be only in the first data block whose
// separator is >= K. Second-level index blocks are closed when they reach
// the same size as data blocks, and each is written right after the data
// block whose entry completes it. The top-level index block, the one Open
// reads, has one entry per second-level index block, whose key is that
// block's last key. Separators are short and prefix-compressed, so with
// 16 KiB blocks and 16-byte random keys an index block holds some 1,200
// entries: a table of a million 200-byte records (220 MB) has 11 index
// blocks and a top-level index of 167 bytes, and a 10 GB table would have
// about 500 index blocks and a top-level index under 10 KB. Keys sharing
// long prefixes make separators, and so the index, longer; a smaller
// BlockSize makes the top-level index larger.
//
// The filter block is a bloom filter over the keys of the table that begin
// with one of a set of bytes (WriterOptions.FilterFirstBytes; by default
// every byte, so every key): bits, then the set as 32 bytes (byte value b
// is in it if bit b%8 of byte b/8 is set), then one byte k, the number of
// probes. A Get of a key outside the set does not consult the filter. For
// n keys in the set the filter has
// n×BloomBitsPerKey bits rounded up to a whole byte (at least 64), and
// k = BloomBitsPerKey×ln 2, rounded down, between 1 and 30. A key's probes
// use double hashing on the 64-bit hash h computed by hash64: probe i
// tests bit (h + i×d) mod m, where d is h rotated by 32 bits, and bit j is
// bit j%8 of byte j/8.
//
// The footer is
//
//	offset size field
//	0      8    offset of the top-level index block
//	8      8    length of the top-level index block
//	16     8    offset of the filter block
//	24     8    length of the filter block, 0 if there is no filter
//	32     8    number of records
//	40     4    format version, 2 (1 had no set of first bytes)
//	44     4    CRC-32C of bytes 0–43
//	48     8    magic "escrowST"
//
// # Damage
//
// Every error that reports a damaged table wraps ErrCorrupt and names the
// file offset of the damage. Open checks the footer, the top-level index
// and the filter; other blocks are checked when they are read, so a Get
// or an Iter reports damage to the blocks it reads, and Verify reads
// and checks everything, including that keys are strictly increasing
// across the whole table and that the blocks tile the file.
package sstable
