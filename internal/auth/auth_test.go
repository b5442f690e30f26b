package auth

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestVerifier(t *testing.T) {
	t.Parallel()
	v := NewVerifier("s3cret")
	now := time.Now()
	good, err := Sign("s3cret", "ann", true, time.Hour, now)
	require.NoError(t, err)
	u, err := v.User(good)
	require.NoError(t, err)
	require.Equal(t, "ann", u.Username)
	require.True(t, u.IsStaff)

	expired, _ := Sign("s3cret", "ann", false, -time.Hour, now)
	otherKey, _ := Sign("other", "ann", false, time.Hour, now)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{PreferredUsername: "ann"}).SignedString([]byte("s3cret"))
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, Claims{PreferredUsername: "ann",
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString([]byte("s3cret"))
	noUser, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString([]byte("s3cret"))
	byUsername, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Username: "bob",
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString([]byte("s3cret"))
	for name, tok := range map[string]string{"empty": "", "expired": expired, "other key": otherKey, "no exp": noExp, "hs512": hs512, "no user": noUser, "garbage": "a.b.c"} {
		_, err := v.User(tok)
		require.ErrorIs(t, err, ErrUnauthenticated, name)
	}
	u, err = v.User(byUsername)
	require.NoError(t, err)
	require.Equal(t, "bob", u.Username)
	require.False(t, u.IsStaff)
}

func TestToken(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "JWT abc")
	require.Equal(t, "abc", Token(r))
	r.Header.Set("Authorization", "Bearer xyz")
	require.Equal(t, "xyz", Token(r))
	r.Header.Set("Authorization", "Basic xyz")
	require.Equal(t, "", Token(r))
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", CookieHeaderPayload+"=h.p; "+CookieSignature+"=s")
	require.Equal(t, "h.p.s", Token(r))
}
