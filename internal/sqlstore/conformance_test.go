package sqlstore_test

import (
	"testing"

	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
	"fulfill/internal/sqlstore/storetest"
)

// TestConformance holds every engine to the one contract of the store:
// SQLite always, PostgreSQL when TEST_DATABASE_URL is set.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, e := range sqlstoretest.Engines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			storetest.Exercise(t, func(t *testing.T) *sqlstore.DB { return sqlstoretest.Open(t, e) })
		})
	}
}
