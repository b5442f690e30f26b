package lmstest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"fulfill/internal/lms"
)

// Issuer is the iss of the tokens the stand-in issues.
const Issuer = "lmstest/oauth2"

// oauthClient is the one OAuth2 client the stand-in knows; a zero id means
// none, and the service APIs take the API key instead.
type oauthClient struct {
	id, secret string
	ttl        time.Duration
}

func newOAuthClient(o Options) oauthClient {
	ttl := o.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	return oauthClient{id: o.OAuthClientID, secret: o.OAuthClientSecret, ttl: ttl}
}

func newSigningKey() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// Call is one call to the commerce, credit, entitlements or token API, as
// received and answered.
type Call struct {
	Method string
	Path   string
	// Authorization and APIKey are the headers the caller sent.
	Authorization string
	APIKey        string
	Status        int
	At            time.Time
}

// Calls returns the most recent calls to the APIs other than enrollment
// (at most MaxRequests), oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// RevokeTokens makes every token issued so far invalid, as if the LMS had
// rotated its signing key: the next call with one gets a 401.
func (s *Server) RevokeTokens() {
	k := newSigningKey()
	s.mu.Lock()
	s.signingKey = k
	s.mu.Unlock()
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logged records each call of h in Calls.
func (s *Server) logged(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		c := Call{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"),
			APIKey: r.Header.Get("X-Edx-Api-Key"), At: time.Now()}
		h(sw, r)
		c.Status = sw.status
		if c.Status == 0 {
			c.Status = http.StatusOK
		}
		s.mu.Lock()
		if len(s.calls) >= s.maxRequests {
			s.calls = append(s.calls[:0], s.calls[len(s.calls)-s.maxRequests+1:]...)
		}
		s.calls = append(s.calls, c)
		s.mu.Unlock()
	})
}

// tokenClaims are the claims of an issued token, as the LMS's
// client-credentials JWTs carry them.
type tokenClaims struct {
	jwt.RegisteredClaims
	PreferredUsername string   `json:"preferred_username"`
	Administrator     bool     `json:"administrator"`
	Scopes            []string `json:"scopes"`
}

// handleToken is the LMS's /oauth2/access_token for the client-credentials
// grant: the client's id and secret in the form (or HTTP Basic), and
// token_type=jwt for a JWT. Errors are RFC 6749's: 400 for an unsupported
// grant or request, 401 invalid_client for wrong credentials.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "unreadable form"})
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	case s.oauth.id == "" || id != s.oauth.id ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.oauth.secret)) != 1:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case !strings.EqualFold(r.PostForm.Get("token_type"), "jwt"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request",
			"error_description": "the stand-in issues JWTs only: send token_type=jwt"})
		return
	}
	now := time.Now()
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   id,
			Audience:  jwt.ClaimStrings{"lms"},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.oauth.ttl)),
			ID:        hex.EncodeToString(jti),
		},
		PreferredUsername: id + "_service_user",
		Administrator:     true,
		Scopes:            []string{"read", "write"},
	}
	s.mu.Lock()
	key := s.signingKey
	s.stats.TokensIssued++
	s.mu.Unlock()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_in":   int64(s.oauth.ttl / time.Second),
		"token_type":   "JWT",
		"scope":        "read write",
	})
}

// authenticateService authenticates a call to the commerce, credit or
// entitlements API: the JWT of an issued token when an OAuth client is
// configured (DRF's answers of edx-drf-extensions' JwtAuthentication:
// 401 with a detail), else the API key.
func (s *Server) authenticateService(w http.ResponseWriter, r *http.Request) (int, any) {
	if s.oauth.id == "" {
		return s.authenticate(r)
	}
	unauthorized := func(detail string) (int, any) {
		w.Header().Set("WWW-Authenticate", `JWT realm="api"`)
		return http.StatusUnauthorized, map[string]string{"detail": detail}
	}
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "JWT") || strings.TrimSpace(raw) == "" {
		return unauthorized("Authentication credentials were not provided.")
	}
	s.mu.Lock()
	key := s.signingKey
	s.mu.Unlock()
	var c tokenClaims
	_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(Issuer))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized("Signature has expired.")
	case err != nil:
		return unauthorized("Error decoding signature.")
	case c.Subject != s.oauth.id:
		return unauthorized("Invalid token.")
	}
	return 0, nil
}

// CreditCourse returns what was published as a credit course.
func (s *Server) CreditCourse(id string) (lms.CreditCourse, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.credits[id]
	return c, ok
}
