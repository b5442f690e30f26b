package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

const (
	testSecret = "s3cret"
	lmsIssuer  = "https://lms.example.com/oauth2"
)

// b64 is base64url without padding, as JWKs carry their numbers.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaJWK is pub as the LMS publishes it; alg and use are left out when "".
func rsaJWK(kid, alg, use string, pub *rsa.PublicKey) map[string]any {
	k := map[string]any{"kty": "RSA", "kid": kid, "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	if alg != "" {
		k["alg"] = alg
	}
	if use != "" {
		k["use"] = use
	}
	return k
}

func ecJWK(t testing.TB, kid, crv string, pub *ecdsa.PublicKey) map[string]any {
	t.Helper()
	point, err := pub.Bytes() // 0x04 || X || Y
	require.NoError(t, err)
	xy := point[1:]
	return map[string]any{"kty": "EC", "kid": kid, "crv": crv, "x": b64(xy[:len(xy)/2]), "y": b64(xy[len(xy)/2:])}
}

func jwkSet(t testing.TB, keys ...map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"keys": keys})
	require.NoError(t, err)
	return string(raw)
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	require.NoError(t, err)
	return k
}

// lmsClaims are the claims the LMS puts in its JWT cookie, valid for
// lifetime from now.
func lmsClaims(now time.Time, lifetime time.Duration) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": lmsIssuer, "aud": "fulfill", "exp": now.Add(lifetime).Unix(), "iat": now.Unix(),
		"preferred_username": "ann", "email": "ann@example.com", "name": "Ann Example", "administrator": false,
		"tracking_context": map[string]any{"lms_user_id": 7, "lms_ip": "203.0.113.9"},
	}
}

// with returns a copy of c with the given claims set, or removed when nil.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != nil {
		tok.Header["kid"] = kid
	}
	raw, err := tok.SignedString(key)
	require.NoError(t, err)
	return raw
}

func TestVerifierJWKSet(t *testing.T) {
	t.Parallel()
	now := time.Now()
	rsa1, rsa2, rsaEnc, stranger := rsaKey(t), rsaKey(t), rsaKey(t), rsaKey(t)
	ec1, ec384 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384())
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	set := jwkSet(t,
		rsaJWK("rsa-1", "", "sig", &rsa1.PublicKey),
		rsaJWK("rsa-2", "RS512", "", &rsa2.PublicKey),
		rsaJWK("enc-1", "", "enc", &rsaEnc.PublicKey),
		ecJWK(t, "ec-1", "P-256", &ec1.PublicKey),
		ecJWK(t, "ec-384", "P-384", &ec384.PublicKey),
		map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64(edPub)},
	)
	v, err := New(Options{Secret: testSecret, JWKSet: set, Issuers: []string{lmsIssuer, "fulfill"},
		Audience: "fulfill", MaxLifetime: time.Hour})
	require.NoError(t, err)

	good := lmsClaims(now, 30*time.Minute)
	pubDER, err := x509.MarshalPKIXPublicKey(&rsa1.PublicKey)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, rsa1, "rsa-1", good), true},
		{"RS384 by kid", sign(t, jwt.SigningMethodRS384, rsa1, "rsa-1", good), true},
		{"RS512 by kid", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", good), true},
		{"RS512 by kid, key pinned to RS512", sign(t, jwt.SigningMethodRS512, rsa2, "rsa-2", good), true},
		{"RS512 without kid, first key", sign(t, jwt.SigningMethodRS512, rsa1, nil, good), true},
		{"RS512 without kid, second key", sign(t, jwt.SigningMethodRS512, rsa2, nil, good), true},
		{"ES256 by kid", sign(t, jwt.SigningMethodES256, ec1, "ec-1", good), true},
		{"ES256 without kid", sign(t, jwt.SigningMethodES256, ec1, nil, good), true},
		{"HS256 under the secret", sign(t, jwt.SigningMethodHS256, []byte(testSecret), nil, good), true},
		{"HS256 under the secret, with a kid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "rsa-1", good), true},
		{"audience in a list", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "aud", []string{"other", "fulfill"})), true},
		{"no iat: no lifetime bound", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "iat", nil, "exp", now.Add(48*time.Hour).Unix())), true},
		{"lifetime at the bound", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "exp", now.Add(time.Hour).Unix())), true},
		{"tracking_context of another shape", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "tracking_context", "x")), true},

		{"kid not in the set", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-9", good), false},
		{"kid of another key", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-2", good), false},
		{"kid of a key pinned to RS512, token RS256", sign(t, jwt.SigningMethodRS256, rsa2, "rsa-2", good), false},
		{"kid of an EC key, token RS512", sign(t, jwt.SigningMethodRS512, rsa1, "ec-1", good), false},
		{"kid not a string", sign(t, jwt.SigningMethodRS512, rsa1, 1, good), false},
		{"key not in the set, no kid", sign(t, jwt.SigningMethodRS512, stranger, nil, good), false},
		{"key not in the set, its kid claimed", sign(t, jwt.SigningMethodRS512, stranger, "rsa-1", good), false},
		{"encryption key (use enc) ignored", sign(t, jwt.SigningMethodRS512, rsaEnc, "enc-1", good), false},
		{"ES384: unknown alg", sign(t, jwt.SigningMethodES384, ec384, "ec-384", good), false},
		{"PS256: unknown alg", sign(t, jwt.SigningMethodPS256, rsa1, "rsa-1", good), false},
		{"EdDSA: unknown alg", sign(t, jwt.SigningMethodEdDSA, edPriv, "ed-1", good), false},
		{"alg none", noneTok, false},
		{"HS256 keyed with the public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", good), false},
		{"HS256 keyed with the public key DER", sign(t, jwt.SigningMethodHS256, pubDER, nil, good), false},
		{"HS256 keyed with the JWK set", sign(t, jwt.SigningMethodHS256, []byte(set), nil, good), false},
		{"HS256 keyed with the modulus", sign(t, jwt.SigningMethodHS256, rsa1.N.Bytes(), nil, good), false},
		{"HS512 under the secret", sign(t, jwt.SigningMethodHS512, []byte(testSecret), nil, good), false},
		{"issuer not listed", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "iss", "https://evil.example.com")), false},
		{"no issuer", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "iss", nil)), false},
		{"HS256, issuer not listed", sign(t, jwt.SigningMethodHS256, []byte(testSecret), nil, with(good, "iss", "other")), false},
		{"other audience", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "aud", "other")), false},
		{"other audiences", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "aud", []string{"a", "b"})), false},
		{"no audience", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "aud", nil)), false},
		{"lifetime over the bound", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "exp", now.Add(time.Hour+time.Second).Unix())), false},
		{"HS256, lifetime over the bound", sign(t, jwt.SigningMethodHS256, []byte(testSecret), nil, with(good, "exp", now.Add(2*time.Hour).Unix())), false},
		{"no exp", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "exp", nil)), false},
		{"expired", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "exp", now.Add(-time.Minute).Unix(), "iat", now.Add(-time.Hour).Unix())), false},
		{"not yet valid", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "nbf", now.Add(time.Hour).Unix())), false},
		{"no user", sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", with(good, "preferred_username", nil)), false},
		{"tampered payload", tamper(sign(t, jwt.SigningMethodRS512, rsa1, "rsa-1", good)), false},
		{"garbage", "a.b.c", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := v.User(tc.token)
			if !tc.ok {
				require.ErrorIs(t, err, ErrUnauthenticated)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "ann", u.Username)
			require.Equal(t, "ann@example.com", u.Email)
			require.Equal(t, "Ann Example", u.FullName)
			require.False(t, u.IsStaff)
		})
	}
}

// tamper makes the payload of raw name a staff user, keeping the signature.
func tamper(raw string) string {
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"administrator":false`, `"administrator":true`, 1))
	return parts[0] + "." + b64(payload) + "." + parts[2]
}

// TestVerifierPinned checks that each algorithm is only ever checked against
// its own kind of key, whatever is configured.
func TestVerifierPinned(t *testing.T) {
	t.Parallel()
	now := time.Now()
	k := rsaKey(t)
	set := jwkSet(t, rsaJWK("k", "", "", &k.PublicKey))
	good := lmsClaims(now, time.Hour)

	hsOnly, err := New(Options{Secret: testSecret})
	require.NoError(t, err)
	_, err = hsOnly.User(sign(t, jwt.SigningMethodRS512, k, "k", good))
	require.ErrorIs(t, err, ErrUnauthenticated, "no JWK set: RS512 refused")
	_, err = hsOnly.User(sign(t, jwt.SigningMethodHS256, []byte(testSecret), nil, good))
	require.NoError(t, err)

	setOnly, err := New(Options{JWKSet: set})
	require.NoError(t, err)
	_, err = setOnly.User(sign(t, jwt.SigningMethodRS512, k, "k", good))
	require.NoError(t, err)
	for name, key := range map[string][]byte{"empty key": {}, "the set": []byte(set), "the modulus": k.N.Bytes()} {
		_, err = setOnly.User(sign(t, jwt.SigningMethodHS256, key, nil, good))
		require.ErrorIs(t, err, ErrUnauthenticated, "no secret: HS256 refused (%s)", name)
	}

	// NewVerifier is HS256 only, with no issuer, audience or lifetime rule.
	legacy := NewVerifier(testSecret)
	u, err := legacy.User(sign(t, jwt.SigningMethodHS256, []byte(testSecret), nil, with(good, "iss", "x", "aud", nil,
		"exp", now.Add(30*24*time.Hour).Unix(), "name", nil, "full_name", "Ann Full", "administrator", true)))
	require.NoError(t, err)
	require.Equal(t, "Ann Full", u.FullName, "full_name stands in for name")
	require.True(t, u.IsStaff)
	_, err = NewVerifier("").User(sign(t, jwt.SigningMethodHS256, []byte{}, nil, good))
	require.ErrorIs(t, err, ErrUnauthenticated, "an empty secret accepts no token")
}

func TestNewRefusesBadKeySets(t *testing.T) {
	t.Parallel()
	k := rsaKey(t)
	ec := ecKey(t, elliptic.P256())
	good := rsaJWK("k", "", "", &k.PublicKey)
	priv := rsaJWK("k", "", "", &k.PublicKey)
	priv["d"] = b64(k.D.Bytes())
	badAlg := ecJWK(t, "e", "P-256", &ec.PublicKey)
	badAlg["alg"] = "RS256"
	for _, tc := range []struct {
		name, set, want string
	}{
		{"not JSON", "{keys:", "not valid JSON"},
		{"a bare key", `{"kty":"RSA"}`, "no signature verification key"},
		{"empty set", `{"keys":[]}`, "no signature verification key"},
		{"encryption keys only", jwkSet(t, rsaJWK("e", "", "enc", &k.PublicKey)), "no signature verification key"},
		{"unsupported keys only", jwkSet(t, ecJWK(t, "e", "P-384", &ecKey(t, elliptic.P384()).PublicKey), rsaJWK("p", "PS256", "", &k.PublicKey)), "no signature verification key"},
		{"symmetric key", jwkSet(t, good, map[string]any{"kty": "oct", "kid": "s", "k": b64([]byte(testSecret))}), `key 1 (kid "s"): a symmetric key`},
		{"private key", jwkSet(t, priv), "private key material"},
		{"alg of another key type", jwkSet(t, good, badAlg), `kid "e"): alg RS256 does not fit a EC key`},
		{"bad modulus", jwkSet(t, map[string]any{"kty": "RSA", "n": "!!", "e": "AQAB"}), "key 0"},
		{"point off the curve", jwkSet(t, map[string]any{"kty": "EC", "crv": "P-256", "x": b64([]byte{1}), "y": b64([]byte{2})}), "key 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(Options{Secret: testSecret, JWKSet: tc.set})
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := New(Options{})
	require.ErrorContains(t, err, "no way to verify tokens")
	_, err = New(Options{JWKSet: "  "})
	require.ErrorContains(t, err, "no way to verify tokens")
}

func TestTokenFrom(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Cookie", CookieHeaderPayload+"=h.p; "+CookieSignature+"=s")
	tok, cookies := TokenFrom(r)
	require.Equal(t, "h.p.s", tok)
	require.True(t, cookies)
	r.Header.Set("Authorization", "JWT abc")
	tok, cookies = TokenFrom(r)
	require.Equal(t, "abc", tok)
	require.False(t, cookies, "the header wins over the cookies")
	r.Header.Set("Authorization", "Basic abc")
	tok, cookies = TokenFrom(r)
	require.Equal(t, "", tok)
	require.False(t, cookies, "another scheme is not a cookie login")
}
