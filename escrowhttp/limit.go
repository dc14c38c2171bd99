package escrowhttp

import (
	"math"
	"sync"
	"time"
)

// RateLimit caps how often one actor may call the API: a token bucket per
// actor that holds at most Burst requests and refills at Rate requests a
// second. A request that finds its actor's bucket empty is refused with
// 429 and a Retry-After header saying, in whole seconds, when the next
// token arrives. The zero value sets no limit.
//
// The limit is per actor, as Options.Actor names them, so it is applied
// after authentication: a request without an actor is refused with 401
// before it costs anyone a token. It protects the ledger from one busy
// client, not the host from unauthenticated floods, which belong in front
// of the handler.
type RateLimit struct {
	// Rate is how many requests a second an actor's bucket regains.
	// Zero means no limit.
	Rate float64
	// Burst is how many requests an actor may make at once, after a quiet
	// spell. Zero means a second's worth: Rate rounded up, and at least 1.
	Burst int
}

// A limiter keeps one token bucket per actor. Buckets are made on an
// actor's first request and dropped once full again, since a full bucket
// is what a new one would be: the map holds only the actors active within
// the last Burst/Rate seconds.
type limiter struct {
	rate  float64 // tokens a second
	burst float64 // the most tokens a bucket holds

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time // when full buckets were last dropped
}

// A bucket holds tokens as of at.
type bucket struct {
	tokens float64
	at     time.Time
}

// newLimiter returns a limiter for rl, or nil if rl sets no limit.
func newLimiter(rl RateLimit) *limiter {
	if rl.Rate == 0 {
		return nil
	}
	burst := float64(rl.Burst)
	if burst == 0 {
		burst = math.Max(1, math.Ceil(rl.Rate))
	}
	return &limiter{rate: rl.Rate, burst: burst, buckets: map[string]*bucket{}}
}

// refill returns b's tokens at now: what it held, plus what the time since
// has brought, up to the burst.
func (l *limiter) refill(b *bucket, now time.Time) float64 {
	elapsed := now.Sub(b.at).Seconds()
	if elapsed < 0 { // the wall clock stepped back: bring nothing, take nothing
		elapsed = 0
	}
	return math.Min(l.burst, b.tokens+elapsed*l.rate)
}

// allow takes a token from key's bucket at now. If the bucket is empty it
// takes nothing and returns false and how long until a token arrives.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens, b.at = l.refill(b, now), now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, seconds((1 - b.tokens) / l.rate)
}

// sweep drops the buckets that are full at now, at most once per time a
// bucket takes to fill from empty (and at most once a second), so that the
// cost of a sweep is spread over the requests between two.
func (l *limiter) sweep(now time.Time) {
	every := seconds(math.Max(1, l.burst/l.rate))
	if now.Sub(l.swept) < every {
		return
	}
	l.swept = now
	for key, b := range l.buckets {
		if l.refill(b, now) >= l.burst {
			delete(l.buckets, key)
		}
	}
}

// seconds converts a count of seconds to a Duration, capped at the largest
// one, which a very small Rate would pass.
func seconds(s float64) time.Duration {
	if d := s * float64(time.Second); d < math.MaxInt64 {
		return time.Duration(d)
	}
	return math.MaxInt64
}

// retryAfter words a wait as a Retry-After header does: whole seconds,
// rounded up, at least 1.
func retryAfter(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}
