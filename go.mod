module github.com/escrowkit/escrow

go 1.24.0

require (
	github.com/gofrs/flock v0.13.0
	github.com/google/go-cmp v0.7.0
	github.com/shopspring/decimal v1.6.0
	github.com/tidwall/btree v1.8.2
)

require golang.org/x/sys v0.37.0 // indirect
