package apperr_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/apperr"
)

func TestDescribe(t *testing.T) {
	notFound := apperr.New(apperr.NotFound, "order not found")
	for _, tc := range []struct {
		name     string
		err      error
		status   int
		internal bool
		public   string
	}{
		{"sentinel", notFound, http.StatusNotFound, false, "order not found"},
		{"wrapped with detail", fmt.Errorf("order %q: %w", "X", notFound), http.StatusNotFound, false, `order "X": order not found`},
		{"conflict", apperr.New(apperr.Conflict, "used"), http.StatusConflict, false, "used"},
		{"not fulfillable", apperr.New(apperr.NotFulfillable, "no"), http.StatusNotAcceptable, false, "no"},
		{"internal", errors.New("pq: relation does not exist"), http.StatusInternalServerError, true, ""},
		{"internal wrapping nothing known", fmt.Errorf("lock: %w", errors.New("driver")), http.StatusInternalServerError, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, internal := apperr.Describe(tc.err)
			require.Equal(t, tc.status, k.Status)
			require.Equal(t, tc.internal, internal)
			require.NotEmpty(t, k.Title)
			require.NotEmpty(t, k.Learner)
			require.Equal(t, tc.public, apperr.Public(tc.err))
		})
	}
}
