package lmstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
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

// guard authenticates a call to the commerce, credit or entitlements API,
// then applies the FailRate fault; false when it answered.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	if status, body := s.authenticateService(w, r); status != 0 {
		writeJSON(w, status, body)
		return false
	}
	return !s.failNow(w)
}

// courseIn is a commerce course PUT body as received: prices are checked
// the way DRF's IntegerField reads them before they become integers.
type courseIn struct {
	ID                   string     `json:"id"`
	Name                 string     `json:"name"`
	VerificationDeadline *time.Time `json:"verification_deadline"`
	Modes                []modeIn   `json:"modes"`
}

type modeIn struct {
	Name       string          `json:"name"`
	Currency   string          `json:"currency"`
	Price      json.RawMessage `json:"price"`
	SKU        string          `json:"sku"`
	BulkSKU    *string         `json:"bulk_sku"`
	Expires    *time.Time      `json:"expires"`
	AndroidSKU *string         `json:"android_sku"`
	IOSSKU     *string         `json:"ios_sku"`
}

// drfDecimalTail is DRF IntegerField's re_decimal: a fraction of zeros is
// dropped before int() reads the rest, so 49.0 and "49.00" are 49.
var drfDecimalTail = regexp.MustCompile(`\.0*\s*$`)

// integerField reads v as DRF's IntegerField does, or returns its error.
func integerField(v json.RawMessage) (int64, string) {
	if v == nil {
		return 0, "This field is required."
	}
	if string(v) == "null" {
		return 0, "This field may not be null."
	}
	var text string
	if json.Unmarshal(v, &text) != nil {
		var n json.Number
		if json.Unmarshal(v, &n) != nil {
			return 0, "A valid integer is required."
		}
		text = n.String()
		if strings.ContainsAny(text, "eE") {
			// Python reads 1e2 as the float 100.0, whose str is "100.0".
			f, err := strconv.ParseFloat(text, 64)
			if err != nil || f != math.Trunc(f) || math.Abs(f) > 1e15 {
				return 0, "A valid integer is required."
			}
			return int64(f), ""
		}
	} else if len(text) > 1000 {
		return 0, "String value too large."
	}
	n, err := strconv.ParseInt(strings.TrimSpace(drfDecimalTail.ReplaceAllString(text, "")), 10, 64)
	if err != nil {
		return 0, "A valid integer is required."
	}
	return n, ""
}

// handleCoursePut stores the modes and SKUs the commerce service publishes,
// as the LMS's commerce course API does. A price its IntegerField will not
// read is refused with DRF's validation answer, one object per mode:
// {"modes": [{}, {"price": ["A valid integer is required."]}]}.
func (s *Server) handleCoursePut(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	id := r.PathValue("id")
	var in courseIn
	raw, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := json.Unmarshal(raw, &in); err != nil {
		writeMessage(w, http.StatusBadRequest, "Request body must be a JSON object.")
		return
	}
	pc := lms.PublishedCourse{ID: in.ID, Name: in.Name, VerificationDeadline: in.VerificationDeadline, Modes: []lms.PublishedMode{}}
	modeErrs := make([]map[string][]string, len(in.Modes))
	refused := false
	for i, m := range in.Modes {
		modeErrs[i] = map[string][]string{}
		price, msg := integerField(m.Price)
		if msg != "" {
			modeErrs[i]["price"] = []string{msg}
			refused = true
		}
		pc.Modes = append(pc.Modes, lms.PublishedMode{Name: m.Name, Currency: m.Currency, Price: price, SKU: m.SKU,
			BulkSKU: m.BulkSKU, Expires: m.Expires, AndroidSKU: m.AndroidSKU, IOSSKU: m.IOSSKU})
	}
	if refused {
		writeJSON(w, http.StatusBadRequest, map[string]any{"modes": modeErrs})
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
	if status, body := s.authenticateService(w, r); status != 0 {
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

// handleCreditPut makes a course a credit course, as the LMS's
// CreditCourseViewSet does: a PUT creates it (201) or updates it (200).
func (s *Server) handleCreditPut(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	id := r.PathValue("id")
	raw, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "JSON parse error."})
		return
	}
	var cc lms.CreditCourse
	if v, ok := body["course_key"]; !ok || json.Unmarshal(v, &cc.CourseKey) != nil || cc.CourseKey == "" {
		writeJSON(w, http.StatusBadRequest, map[string][]string{"course_key": {"This field is required."}})
		return
	}
	if v, ok := body["enabled"]; ok && json.Unmarshal(v, &cc.Enabled) != nil {
		writeJSON(w, http.StatusBadRequest, map[string][]string{"enabled": {"Must be a valid boolean."}})
		return
	}
	switch {
	case !courseKeyV1.MatchString(cc.CourseKey) && !courseKeyOld.MatchString(cc.CourseKey):
		writeJSON(w, http.StatusBadRequest, map[string][]string{"course_key": {"[" + cc.CourseKey + "] is not a valid course key."}})
		return
	case cc.CourseKey != id:
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "course_key in the body does not match the URL."})
		return
	}
	s.mu.Lock()
	_, existed := s.credits[id]
	s.credits[id] = cc
	s.mu.Unlock()
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, cc)
}

func (s *Server) handleCreditGet(w http.ResponseWriter, r *http.Request) {
	if status, body := s.authenticateService(w, r); status != 0 {
		writeJSON(w, status, body)
		return
	}
	cc, ok := s.CreditCourse(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	writeJSON(w, http.StatusOK, cc)
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
	if status, body := s.authenticateService(w, r); status != 0 {
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
