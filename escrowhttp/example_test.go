package escrowhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/escrowhttp"
	"github.com/escrowkit/escrow/storage/memstore"
)

// A host mounts the handler on its own mux, with its own idea of who
// calls. Here a header names the actor; a real host reads its session or
// verifies a token.
func ExampleNew() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	clock := escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	ledger, err := escrow.New(ctx, store, &escrow.Options{Clock: clock})
	if err != nil {
		panic(err)
	}
	api, err := escrowhttp.New(ledger, &escrowhttp.Options{
		Actor: func(r *http.Request) (string, error) {
			if user := r.Header.Get("X-User"); user != "" {
				return user, nil
			}
			return "", errors.New("sign in first")
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)

	for _, user := range []string{"alice", ""} {
		r := httptest.NewRequest("POST", "/v1/accounts", strings.NewReader("{}"))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 201 {"id":"alice","system":false,"created_at":"2026-03-01T09:00:00Z"}
	// 401 {"error":{"code":"unauthenticated","message":"sign in first"}}
}
