package sstable

import "sync"

// cacheEntryOverhead is what the cache counts for each block it holds
// besides the block's bytes: the map slot, the list entry and the block
// header.
const cacheEntryOverhead = 128

// A Cache holds recently read data and index blocks of any number of
// tables, up to a size in bytes, evicting the least recently used block
// first. It is safe for concurrent use. A nil *Cache caches nothing.
//
// A block is counted as its size on disk (with its trailer) plus a fixed
// overhead per block. The cache never holds more than its maximum; a
// block larger than the maximum is not cached at all. Blocks an Iter is
// positioned in stay in memory while it is there, even once evicted.
//
// Blocks of a closed table stay in the cache until evicted; they are
// never read again, as long as every open table has its own id.
type Cache struct {
	mu     sync.Mutex
	max    int64
	bytes  int64
	hits   uint64
	misses uint64
	m      map[cacheKey]*cacheEntry
	lru    cacheEntry // sentinel: lru.next is the most recently used
}

// CacheStats describes a Cache at one moment.
type CacheStats struct {
	Bytes    int64  // bytes held, counted as the Cache doc describes
	MaxBytes int64  // the cache's maximum
	Hits     uint64 // lookups that found their block
	Misses   uint64 // lookups that did not
	Blocks   int    // blocks held
}

// cacheKey names a block: the id its table was opened with and the
// block's offset.
type cacheKey struct {
	id, off uint64
}

// A cacheEntry is one cached block and its place in the LRU list.
type cacheEntry struct {
	key        cacheKey
	b          *block
	size       int64
	prev, next *cacheEntry
}

// NewCache returns a cache that holds at most maxBytes bytes of blocks.
// A maxBytes of 0 or less caches nothing.
func NewCache(maxBytes int64) *Cache {
	c := &Cache{max: max(maxBytes, 0), m: make(map[cacheKey]*cacheEntry)}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// Stats returns the cache's current figures.
func (c *Cache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Bytes: c.bytes, MaxBytes: c.max, Hits: c.hits, Misses: c.misses, Blocks: len(c.m)}
}

// blockSize returns what the cache counts for b.
func blockSize(b *block) int64 {
	return int64(cap(b.data)) + cacheEntryOverhead
}

// get returns the block at offset off of table id, or nil if the cache
// does not hold it.
func (c *Cache) get(id, off uint64) *block {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[cacheKey{id, off}]
	if e == nil {
		c.misses++
		return nil
	}
	c.hits++
	c.unlink(e)
	c.pushFront(e)
	return e.b
}

// put adds b as the block at offset off of table id, evicting the least
// recently used blocks as needed, and returns the block the cache now
// holds there: b, or the copy another reader put first.
func (c *Cache) put(id, off uint64, b *block) *block {
	if c == nil {
		return b
	}
	size := blockSize(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey{id, off}
	if e := c.m[k]; e != nil {
		return e.b
	}
	if size > c.max {
		return b
	}
	e := &cacheEntry{key: k, b: b, size: size}
	c.m[k] = e
	c.pushFront(e)
	c.bytes += size
	for c.bytes > c.max {
		c.evict(c.lru.prev)
	}
	return b
}

// evict removes e from the cache.
func (c *Cache) evict(e *cacheEntry) {
	c.unlink(e)
	delete(c.m, e.key)
	c.bytes -= e.size
}

// unlink takes e out of the LRU list.
func (c *Cache) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// pushFront makes e the most recently used entry.
func (c *Cache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}
