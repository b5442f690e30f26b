// Package auth reads the caller's identity from an edX-style JWT:
// "Authorization: JWT <token>" or "Bearer <token>", or the LMS's JWT cookie
// pair. Tokens are HS256 under a shared secret (service tokens) or RS256,
// RS384, RS512 or ES256 under the LMS's public JWK set (the cookie pair is
// RS512); each algorithm is pinned to its kind of key. Expiry is required.
// The claims name the user and say whether they are staff.
package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"fulfill/internal/apperr"
	"fulfill/internal/order"
)

// ErrUnauthenticated is returned when no valid token is presented.
var ErrUnauthenticated = apperr.New(apperr.Unauthenticated, "authentication credentials were not provided or are invalid")

// ErrForbidden is returned when the caller may not do what they asked.
var ErrForbidden = apperr.New(apperr.Forbidden, "you do not have permission to perform this action")

// ErrCrossSite is returned for an unsafe request that another site made
// the browser send with the JWT cookie pair (cross-site request forgery).
var ErrCrossSite = apperr.New(apperr.Forbidden,
	"cross-site request refused: a request authenticated by the JWT cookies alone must come from this site; other clients send Authorization: JWT <token>")

// Claims are the edX JWT claims we read.
type Claims struct {
	jwt.RegisteredClaims
	PreferredUsername string `json:"preferred_username,omitempty"`
	Username          string `json:"username,omitempty"`
	Email             string `json:"email,omitempty"`
	Name              string `json:"name,omitempty"`
	// FullName is Otto's name for the user's name (its
	// JWT_PAYLOAD_USER_ATTRIBUTE_MAPPING); the LMS sends name.
	FullName      string `json:"full_name,omitempty"`
	Administrator bool   `json:"administrator,omitempty"`
	// TrackingContext is kept raw and read leniently (trackingContext): a
	// shape we do not expect must not refuse a token.
	TrackingContext json.RawMessage `json:"tracking_context,omitempty"`
}

// The edX JWT cookie pair: the header and payload in one cookie, the
// signature in the other.
const (
	CookieHeaderPayload = "edx-jwt-cookie-header-payload"
	CookieSignature     = "edx-jwt-cookie-signature"
)

// leeway is the clock skew allowed on exp (and nbf).
const leeway = 30 * time.Second

// Options say which tokens a Verifier accepts.
type Options struct {
	// Secret verifies HS256 tokens; empty refuses them.
	Secret string
	// JWKSet is the LMS's public JWK set (JSON), which verifies RS256,
	// RS384, RS512 and ES256 tokens; empty refuses them.
	JWKSet string
	// Issuers, when not empty, lists the only iss values accepted.
	Issuers []string
	// Audience, when set, must be the token's aud or one of its entries.
	Audience string
	// MaxLifetime, when positive, refuses a token that carries iat and
	// whose exp is further than this from it.
	MaxLifetime time.Duration
}

// Verifier checks tokens: HS256 against the secret, the asymmetric
// algorithms against the public keys, never one against the other.
type Verifier struct {
	secret      []byte // nil: HS256 refused
	keys        []publicKey
	issuers     []string
	maxLifetime time.Duration
	parser      *jwt.Parser
}

// New returns a verifier for o. The JWK set is parsed here, once; an
// unusable set, or neither a secret nor a set, is an error.
func New(o Options) (*Verifier, error) {
	v := &Verifier{issuers: slices.Clone(o.Issuers), maxLifetime: o.MaxLifetime}
	var methods []string
	if o.Secret != "" {
		v.secret = []byte(o.Secret)
		methods = append(methods, "HS256")
	}
	if strings.TrimSpace(o.JWKSet) != "" {
		keys, err := parseJWKSet(o.JWKSet)
		if err != nil {
			return nil, err
		}
		v.keys = keys
		for _, k := range keys {
			for _, alg := range k.algs {
				if !slices.Contains(methods, alg) {
					methods = append(methods, alg)
				}
			}
		}
	}
	if len(methods) == 0 {
		return nil, errors.New("auth: no way to verify tokens: give an HS256 secret, a public JWK set, or both")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway)}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// NewVerifier returns a verifier for HS256 tokens signed with secret, with
// no issuer, audience or lifetime rule. An empty secret accepts no token.
func NewVerifier(secret string) *Verifier {
	v, err := New(Options{Secret: secret})
	if err != nil {
		return &Verifier{parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())}
	}
	return v
}

// Token extracts the raw token from the Authorization header, or from the
// edX JWT cookie pair. "" when there is none.
func Token(r *http.Request) string {
	tok, _ := TokenFrom(r)
	return tok
}

// TokenFrom is Token, and says whether the token came from the cookie pair,
// which a browser sends on its own, even when another site makes it send
// the request (so unsafe requests it authenticates need a same-origin
// check). A request with an Authorization header is never read from
// cookies, even when that header is not a JWT.
func TokenFrom(r *http.Request) (tok string, fromCookies bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && (strings.EqualFold(scheme, "JWT") || strings.EqualFold(scheme, "Bearer")) {
			return strings.TrimSpace(tok), false
		}
		return "", false
	}
	hp, err1 := r.Cookie(CookieHeaderPayload)
	sig, err2 := r.Cookie(CookieSignature)
	if err1 == nil && err2 == nil {
		return hp.Value + "." + sig.Value, true
	}
	return "", false
}

// User verifies a raw token and returns the user it names. Every refusal
// wraps ErrUnauthenticated.
func (v *Verifier) User(raw string) (order.User, error) {
	if raw == "" {
		return order.User{}, ErrUnauthenticated
	}
	var c Claims
	if _, err := v.parser.ParseWithClaims(raw, &c, v.key); err != nil {
		return order.User{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if len(v.issuers) > 0 && !slices.Contains(v.issuers, c.Issuer) {
		return order.User{}, fmt.Errorf("%w: issuer %q is not accepted", ErrUnauthenticated, c.Issuer)
	}
	if v.maxLifetime > 0 && c.IssuedAt != nil && c.ExpiresAt.Sub(c.IssuedAt.Time) > v.maxLifetime {
		return order.User{}, fmt.Errorf("%w: token lifetime %s exceeds %s", ErrUnauthenticated,
			c.ExpiresAt.Sub(c.IssuedAt.Time), v.maxLifetime)
	}
	name := c.PreferredUsername
	if name == "" {
		name = c.Username
	}
	if name == "" {
		return order.User{}, fmt.Errorf("%w: token names no user", ErrUnauthenticated)
	}
	full := c.Name
	if full == "" {
		full = c.FullName
	}
	u := order.User{Username: name, Email: c.Email, FullName: full, IsStaff: c.Administrator}
	u.GAClientID, u.IP = trackingContext(c.TrackingContext)
	return u, nil
}

// trackingContext reads the two values of a tracking_context claim that
// Otto forwards to the LMS with enrollments: ga_client_id and lms_ip. A
// claim that is not an object, or a value that is not a string, gives "".
func trackingContext(raw json.RawMessage) (gaClientID, ip string) {
	var tc map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &tc) != nil {
		return "", ""
	}
	str := func(key string) string {
		var s string
		if v, ok := tc[key]; ok && json.Unmarshal(v, &s) == nil {
			return strings.TrimSpace(s)
		}
		return ""
	}
	return str("ga_client_id"), str("lms_ip")
}

// key picks the verification key of a token whose algorithm the parser
// already allowed: the secret for HS256, and for the others the public
// keys pinned to that algorithm, the one named by kid when the token has
// one.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == "HS256" {
		if v.secret == nil {
			return nil, errors.New("HS256 tokens are not accepted")
		}
		return v.secret, nil
	}
	kid := ""
	if h, ok := t.Header["kid"]; ok {
		s, ok := h.(string)
		if !ok {
			return nil, errors.New("kid header is not a string")
		}
		kid = s
	}
	var set jwt.VerificationKeySet
	for _, k := range v.keys {
		if slices.Contains(k.algs, alg) && (kid == "" || k.kid == kid) {
			set.Keys = append(set.Keys, k.key)
		}
	}
	switch {
	case len(set.Keys) > 0:
		return set, nil
	case kid != "":
		return nil, fmt.Errorf("no %s key with kid %q in the JWK set", alg, kid)
	default:
		return nil, fmt.Errorf("no %s key in the JWK set", alg)
	}
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
