package memstore

// chunkSize is how many records one chunk of a log holds.
const chunkSize = 1024

// chunkedLog is an append-only sequence stored in fixed-size chunks, so
// that growing it never copies what is already there (a single slice would
// move every record each time it doubled).
type chunkedLog[T any] struct {
	chunks [][]T
	n      int
}

func (l *chunkedLog[T]) len() int { return l.n }

func (l *chunkedLog[T]) append(v T) {
	if l.n%chunkSize == 0 {
		l.chunks = append(l.chunks, make([]T, 0, chunkSize))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, v)
	l.n++
}

// at returns the i-th record, counting from 0.
func (l *chunkedLog[T]) at(i int) *T { return &l.chunks[i/chunkSize][i%chunkSize] }

// pop removes the last record.
func (l *chunkedLog[T]) pop() {
	last := &l.chunks[len(l.chunks)-1]
	var zero T
	(*last)[len(*last)-1] = zero
	*last = (*last)[:len(*last)-1]
	l.n--
	if len(*last) == 0 {
		l.chunks[len(l.chunks)-1] = nil
		l.chunks = l.chunks[:len(l.chunks)-1]
	}
}
