package api

import (
	"context"
	"net/http"
	"time"
)

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func handleReadyz(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := store.Ready(ctx); err != nil {
			writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Detail: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// handleHealth is Otto's GET /health/ (ecommerce.core.views.health): 200
// {"overall_status": "OK", "detailed_status": {"database_status": "OK"}},
// or 503 with "UNAVAILABLE" when the database does not answer.
func handleHealth(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status, db := http.StatusOK, "OK"
		if err := store.Ready(ctx); err != nil {
			logFrom(r).Error("health: database", "error", err)
			status, db = http.StatusServiceUnavailable, "UNAVAILABLE"
		}
		writeJSON(w, status, map[string]any{"overall_status": db, "detailed_status": map[string]string{"database_status": db}})
	})
}
