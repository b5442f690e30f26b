package lmstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"fulfill/internal/lms"
)

// failNow decides, under the fault knobs, whether a commerce or
// entitlement call fails with FailStatus (these endpoints only know
// FailRate; resets and hangs are the enrollment endpoint's).
func (s *Server) failNow(w http.ResponseWriter) bool {
	s.mu.Lock()
	f := s.faults
	fail := f.FailRate > 0 && s.rng.Float64() < f.FailRate
	s.mu.Unlock()
	if !fail {
		return false
	}
	status := f.FailStatus
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	writeMessage(w, status, "Simulated LMS failure (fault injection).")
	return true
}

func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	if status, body := s.authenticate(r); status != 0 {
		writeJSON(w, status, body)
		return false
	}
	return !s.failNow(w)
}

// handleCoursePut stores the modes and SKUs the commerce service publishes,
// as the LMS's commerce course API does.
func (s *Server) handleCoursePut(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	id := r.PathValue("id")
	var pc lms.PublishedCourse
	raw, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := json.Unmarshal(raw, &pc); err != nil {
		writeMessage(w, http.StatusBadRequest, "Request body must be a JSON object.")
		return
	}
	switch {
	case pc.ID != id:
		writeMessage(w, http.StatusBadRequest, "Course ID in the body does not match the URL.")
		return
	case !courseKeyV1.MatchString(id) && !courseKeyOld.MatchString(id):
		writeMessage(w, http.StatusBadRequest, "No course '"+id+"' found.")
		return
	case len(pc.Modes) == 0:
		writeMessage(w, http.StatusBadRequest, "At least one mode is required.")
		return
	}
	for _, m := range pc.Modes {
		if !validMode(m.Name) || m.SKU == "" {
			writeMessage(w, http.StatusBadRequest, "Invalid mode '"+m.Name+"' or missing sku.")
			return
		}
	}
	s.mu.Lock()
	s.courses[id] = pc
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, pc)
}

func (s *Server) handleCourseGet(w http.ResponseWriter, r *http.Request) {
	if status, body := s.authenticate(r); status != 0 {
		writeJSON(w, status, body)
		return
	}
	s.mu.Lock()
	pc, ok := s.courses[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	writeJSON(w, http.StatusOK, pc)
}

// PublishedCourse returns what was published for a course.
func (s *Server) PublishedCourse(id string) (lms.PublishedCourse, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc, ok := s.courses[id]
	return pc, ok
}

// handleEntitlementPost grants an entitlement. A retry with the same
// Idempotency-Key gets the entitlement made the first time.
func (s *Server) handleEntitlementPost(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	var req lms.EntitlementRequest
	raw, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := json.Unmarshal(raw, &req); err != nil || req.User == "" || req.CourseUUID == "" || req.Mode == "" {
		writeMessage(w, http.StatusBadRequest, "user, course_uuid and mode are required.")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.entsByKey[key]; ok && key != "" {
		writeJSON(w, http.StatusCreated, s.ents[id])
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	e := lms.Entitlement{UUID: hex.EncodeToString(b), User: req.User, CourseUUID: req.CourseUUID, Mode: req.Mode, OrderNumber: req.OrderNumber}
	s.ents[e.UUID] = e
	if key != "" {
		s.entsByKey[key] = e.UUID
	}
	writeJSON(w, http.StatusCreated, e)
}

func (s *Server) handleEntitlementGet(w http.ResponseWriter, r *http.Request) {
	if status, body := s.authenticate(r); status != 0 {
		writeJSON(w, status, body)
		return
	}
	s.mu.Lock()
	e, ok := s.ents[r.PathValue("uuid")]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// handleEntitlementDelete revokes (expires) an entitlement.
func (s *Server) handleEntitlementDelete(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ents[r.PathValue("uuid")]
	if !ok || e.ExpiredAt != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	now := time.Now().UTC()
	e.ExpiredAt = &now
	s.ents[e.UUID] = e
	w.WriteHeader(http.StatusNoContent)
}

// Entitlements returns every entitlement, revoked ones included.
func (s *Server) Entitlements() []lms.Entitlement {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]lms.Entitlement, 0, len(s.ents))
	for _, e := range s.ents {
		out = append(out, e)
	}
	return out
}
