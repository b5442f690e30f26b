// Package pgschema gives a test a fresh PostgreSQL schema at a base URL,
// dropped when the test ends. It imports nothing of the store, so that the
// store's own (in-package) tests can use it as sqlstoretest does.
package pgschema

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/stretchr/testify/require"
)

// New creates a schema named prefix_<random> at base and returns base with
// search_path set to it.
func New(t testing.TB, base, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	_, err = admin.Exec(`CREATE SCHEMA ` + schema)
	require.NoError(t, err, "PostgreSQL at TEST_DATABASE_URL must be reachable")
	t.Cleanup(func() {
		_, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
