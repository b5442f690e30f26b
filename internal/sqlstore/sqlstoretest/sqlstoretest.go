// Package sqlstoretest gives tests real databases: a fresh SQLite file
// always, and a fresh PostgreSQL schema when TEST_DATABASE_URL is set.
// With FULFILL_REQUIRE_POSTGRES=1 (CI), a missing or unreachable PostgreSQL
// fails the test instead of skipping it.
package sqlstoretest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest/pgschema"
)

// Engines lists the engines to test on.
func Engines(t testing.TB) []sqlstore.Engine {
	out := []sqlstore.Engine{sqlstore.SQLite}
	if os.Getenv("TEST_DATABASE_URL") != "" {
		out = append(out, sqlstore.Postgres)
	} else if os.Getenv("FULFILL_REQUIRE_POSTGRES") == "1" {
		t.Fatal("FULFILL_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
	}
	return out
}

// URL returns the URL of a fresh, empty database of engine e, dropped when
// the test ends.
func URL(t testing.TB, e sqlstore.Engine) string {
	t.Helper()
	if e == sqlstore.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
	}
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL not set")
	}
	return pgschema.New(t, base, "t")
}

// Open returns a migrated store on a fresh database of engine e.
func Open(t testing.TB, e sqlstore.Engine) *sqlstore.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, URL(t, e))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx))
	return db
}

// ForEach runs fn as a subtest on every engine.
func ForEach(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	for _, e := range Engines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, e))
		})
	}
}
