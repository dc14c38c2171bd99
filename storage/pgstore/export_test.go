package pgstore

import "github.com/jackc/pgx/v5/pgxpool"

// PoolOf returns the pool s runs on, for tests that ask the server how a
// store's connections are set.
func PoolOf(s *Store) *pgxpool.Pool { return s.pool }
