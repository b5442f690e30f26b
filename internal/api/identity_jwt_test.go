package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"fulfill/internal/app"
	"fulfill/internal/apptest"
	"fulfill/internal/auth"
	"fulfill/internal/config"
	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

const lmsIssuer = "https://lms.example.com/oauth2"

// lmsToken is the token the LMS puts in its JWT cookie pair: RS512 under
// the key with kid "lms-1".
func lmsToken(t testing.TB, key *rsa.PrivateKey, user, issuer string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS512, jwt.MapClaims{
		"iss": issuer, "aud": "lms-key", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"preferred_username": user, "email": user + "@example.com", "name": "Learner " + user,
		"administrator": false, "tracking_context": map[string]any{"lms_user_id": 7},
	})
	tok.Header["kid"] = "lms-1"
	raw, err := tok.SignedString(key)
	require.NoError(t, err)
	return raw
}

// lmsJWKSet is the LMS's JWT_PUBLIC_SIGNING_JWK_SET for key.
func lmsJWKSet(t testing.TB, key *rsa.PublicKey) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	raw, err := json.Marshal(map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "lms-1", "use": "sig", "n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())},
	}})
	require.NoError(t, err)
	return string(raw)
}

// send is apptest's Do for a browser request: headers as given, the token
// (if any) as the edX JWT cookie pair. A 4xx must be problem+json.
func send(t testing.TB, e *apptest.Env, method, path string, hdr map[string]string, cookieToken string, body any, want int, out any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cookieToken != "" {
		dot := strings.LastIndexByte(cookieToken, '.')
		req.AddCookie(&http.Cookie{Name: auth.CookieHeaderPayload, Value: cookieToken[:dot]})
		req.AddCookie(&http.Cookie{Name: auth.CookieSignature, Value: cookieToken[dot+1:]})
	}
	res, got := e.Send(req) // checked against the OpenAPI document
	require.Equal(t, want, res.StatusCode, "%s %s %v: %s", method, path, hdr, got)
	if res.StatusCode >= 400 {
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), string(got))
		var p struct {
			Title  string `json:"title"`
			Status int    `json:"status"`
		}
		require.NoError(t, json.Unmarshal(got, &p))
		require.Equal(t, want, p.Status)
		require.NotEmpty(t, p.Title)
	}
	if out != nil {
		require.NoError(t, json.Unmarshal(got, out), string(got))
	}
}

// TestIdentityAsTheLMSIssuesIt: the LMS's RS512 tokens buy through the
// JSON API, issuers are enforced, and the JWT cookie pair authenticates
// unsafe requests only from this site.
func TestIdentityAsTheLMSIssuesIt(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	set := lmsJWKSet(t, &key.PublicKey)
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := apptest.New(t, engine, apptest.Options{Configure: func(cfg *config.Config) {
			cfg.JWTJWKSet = set
			cfg.JWTIssuers = lmsIssuer + ", fulfill" // fulfill: the harness's own HS256 staff token
		}})
		free := e.Course(course, "Demo", []map[string]any{{"certificate_type": "", "price": "0.00", "currency": "USD"}})["audit"]
		require.NotEmpty(t, free)
		body := map[string]any{"products": []map[string]string{{"sku": free}}, "checkout": true}
		ordersOf := func(user string) int {
			var page struct{ Results []struct{ Number string } }
			e.Do("GET", "/api/v2/orders/?username="+user, e.Staff, nil, http.StatusOK, &page)
			return len(page.Results)
		}

		// An RS512 token, as the LMS signs it, buys the free seat.
		var b apptest.Basket
		e.Do("POST", "/api/v2/baskets/", lmsToken(t, key, "ann", lmsIssuer), body, http.StatusOK, &b)
		require.Equal(t, "Complete", b.Order.Status)
		var o struct {
			User struct{ Username, Email string }
		}
		e.Do("GET", "/api/v2/orders/"+b.Order.Number+"/", e.Staff, nil, http.StatusOK, &o)
		require.Equal(t, "ann", o.User.Username)

		// The same key, an issuer not in --jwt-issuers: 401.
		e.Do("POST", "/api/v2/baskets/", lmsToken(t, key, "bob", "https://evil.example.com"), body, http.StatusUnauthorized, nil)
		e.Do("GET", "/api/v2/orders/", lmsToken(t, key, "bob", "https://evil.example.com"), nil, http.StatusUnauthorized, nil)
		require.Zero(t, ordersOf("bob"))

		// The cookie pair alone on an unsafe request from another site (or
		// with no evidence of where it comes from): 403, nothing bought.
		for i, hdr := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example.com"},
			{"Sec-Fetch-Site": "same-site", "Origin": "https://marketing.example.com"},
			{"Sec-Fetch-Site": "cross-site", "Origin": e.URL}, // Fetch metadata wins over a forged-looking Origin
			{"Origin": "https://evil.example.com"},
			{"Origin": "null"},
			{},
		} {
			user := "carl" + string(rune('a'+i))
			send(t, e, "POST", "/api/v2/baskets/", hdr, lmsToken(t, key, user, lmsIssuer), body, http.StatusForbidden, nil)
			require.Zero(t, ordersOf(user), "%v", hdr)
		}

		// The same request from this site is accepted: Fetch metadata, or
		// an Origin that is this host when the browser sends no metadata.
		for user, hdr := range map[string]map[string]string{
			"dora": {"Sec-Fetch-Site": "same-origin", "Origin": e.URL},
			"dan":  {"Origin": e.URL},
			"dina": {"Sec-Fetch-Site": "none"},
		} {
			var b apptest.Basket
			send(t, e, "POST", "/api/v2/baskets/", hdr, lmsToken(t, key, user, lmsIssuer), body, http.StatusOK, &b)
			require.Equal(t, "Complete", b.Order.Status, user)
		}

		// A safe method with the cookies is fine from anywhere; an
		// Authorization header is not a cookie login, whatever the origin.
		var page struct {
			Results []struct{ Number string }
		}
		send(t, e, "GET", "/api/v2/orders/", map[string]string{"Sec-Fetch-Site": "cross-site"}, lmsToken(t, key, "ann", lmsIssuer), nil, http.StatusOK, &page)
		require.Len(t, page.Results, 1)
		require.Equal(t, b.Order.Number, page.Results[0].Number)
		send(t, e, "POST", "/api/v2/baskets/", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example.com",
			"Authorization": "JWT " + lmsToken(t, key, "erin", lmsIssuer)}, "", body, http.StatusOK, nil)
		require.Equal(t, 1, ordersOf("erin"))

		// A bad cookie token from this site is still a 401.
		send(t, e, "POST", "/api/v2/baskets/", map[string]string{"Sec-Fetch-Site": "same-origin"}, lmsToken(t, key, "fred", "https://evil.example.com"), body, http.StatusUnauthorized, nil)
	})
}

// TestMalformedJWKSetFailsStart: a bad --jwt-public-signing-jwk-set stops
// app.New with a configuration error, before anything serves.
func TestMalformedJWKSetFailsStart(t *testing.T) {
	t.Parallel()
	for name, set := range map[string]string{
		"not JSON":       `{"keys": [`,
		"bad modulus":    `{"keys":[{"kty":"RSA","kid":"k","n":"!","e":"AQAB"}]}`,
		"no signing key": `{"keys":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Flags(flag.NewFlagSet("test", flag.ContinueOnError))
			cfg.DB, cfg.Demo, cfg.JWTSecret = sqlstoretest.URL(t, sqlstore.SQLite), true, secret
			cfg.JWTJWKSet = set
			require.NoError(t, cfg.Validate())
			a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			require.Nil(t, a)
			require.ErrorContains(t, err, "config: JWT verification (--jwt-secret, --jwt-public-signing-jwk-set): JWK set")
		})
	}
}
