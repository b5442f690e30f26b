// Package auth reads the caller's identity from an edX-style JWT:
// "Authorization: JWT <token>" or "Bearer <token>", HS256 only, expiry
// required. Its claims name the user and say whether they are staff.
package auth

import (
	"fmt"
	"fulfill/internal/apperr"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"fulfill/internal/order"
)

// ErrUnauthenticated is returned when no valid token is presented.
var ErrUnauthenticated = apperr.New(apperr.Unauthenticated, "authentication credentials were not provided or are invalid")

// ErrForbidden is returned when the caller may not do what they asked.
var ErrForbidden = apperr.New(apperr.Forbidden, "you do not have permission to perform this action")

// Claims are the edX JWT claims we read.
type Claims struct {
	jwt.RegisteredClaims
	PreferredUsername string `json:"preferred_username,omitempty"`
	Username          string `json:"username,omitempty"`
	Email             string `json:"email,omitempty"`
	Name              string `json:"name,omitempty"`
	Administrator     bool   `json:"administrator,omitempty"`
}

// The edX JWT cookie pair: the header and payload in one cookie, the
// signature in the other.
const (
	CookieHeaderPayload = "edx-jwt-cookie-header-payload"
	CookieSignature     = "edx-jwt-cookie-signature"
)

// Verifier checks tokens signed with a shared secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a verifier for HS256 tokens signed with secret.
func NewVerifier(secret string) *Verifier {
	return &Verifier{
		secret: []byte(secret),
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(30*time.Second)),
	}
}

// Token extracts the raw token from the Authorization header, or from the
// edX JWT cookie pair. "" when there is none.
func Token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && (strings.EqualFold(scheme, "JWT") || strings.EqualFold(scheme, "Bearer")) {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	hp, err1 := r.Cookie(CookieHeaderPayload)
	sig, err2 := r.Cookie(CookieSignature)
	if err1 == nil && err2 == nil {
		return hp.Value + "." + sig.Value
	}
	return ""
}

// User verifies a raw token and returns the user it names.
func (v *Verifier) User(raw string) (order.User, error) {
	if raw == "" {
		return order.User{}, ErrUnauthenticated
	}
	var c Claims
	if _, err := v.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return v.secret, nil }); err != nil {
		return order.User{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	name := c.PreferredUsername
	if name == "" {
		name = c.Username
	}
	if name == "" {
		return order.User{}, fmt.Errorf("%w: token names no user", ErrUnauthenticated)
	}
	return order.User{Username: name, Email: c.Email, FullName: c.Name, IsStaff: c.Administrator}, nil
}

// Sign makes a token for development and tests.
func Sign(secret, username string, staff bool, ttl time.Duration, now time.Time) (string, error) {
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   username,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			Issuer:    "fulfill",
		},
		PreferredUsername: username,
		Email:             username + "@example.com",
		Administrator:     staff,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}
