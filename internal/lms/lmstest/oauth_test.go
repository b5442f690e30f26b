package lmstest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
)

const (
	clientID     = "backend-service"
	clientSecret = "s3cret"
)

func oauthOpts() lmstest.Options {
	return lmstest.Options{APIKey: key, Seed: 1, OAuthClientID: clientID, OAuthClientSecret: clientSecret}
}

// tokenFrom asks the stand-in for a token with the given form.
func tokenFrom(t *testing.T, srv *httptest.Server, form url.Values) answer {
	t.Helper()
	resp, err := http.PostForm(srv.URL+lms.TokenPath, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func goodForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {clientSecret}, "token_type": {"jwt"}}
}

func issue(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	a := tokenFrom(t, srv, goodForm())
	require.Equal(t, http.StatusOK, a.status, a.body)
	return a.json(t)["access_token"].(string)
}

// call sends a request with an Authorization header (none when "") and
// the API key.
func call(t *testing.T, method, u, authorization, apiKey, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if apiKey != "" {
		req.Header.Set("X-Edx-Api-Key", apiKey)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func TestTokenEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		form       func(url.Values)
		wantStatus int
		wantError  string
	}{
		{name: "client credentials", form: func(url.Values) {}, wantStatus: 200},
		{name: "wrong secret", form: func(f url.Values) { f.Set("client_secret", "nope") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "unknown client", form: func(f url.Values) { f.Set("client_id", "other") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "no credentials", form: func(f url.Values) { f.Del("client_id"); f.Del("client_secret") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "password grant", form: func(f url.Values) { f.Set("grant_type", "password") }, wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "no token_type", form: func(f url.Values) { f.Del("token_type") }, wantStatus: 400, wantError: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := start(t, oauthOpts())
			form := goodForm()
			tc.form(form)
			a := tokenFrom(t, srv, form)
			require.Equal(t, tc.wantStatus, a.status, a.body)
			m := a.json(t)
			if tc.wantError != "" {
				require.Equal(t, tc.wantError, m["error"])
				require.Zero(t, s.Stats().TokensIssued)
				return
			}
			require.Equal(t, "JWT", m["token_type"])
			require.EqualValues(t, 3600, m["expires_in"])
			require.Len(t, strings.Split(m["access_token"].(string), "."), 3, "a JWT")
			require.Equal(t, 1, s.Stats().TokensIssued)
		})
	}

	t.Run("no OAuth client configured", func(t *testing.T) {
		_, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
		require.Equal(t, http.StatusUnauthorized, tokenFrom(t, srv, goodForm()).status)
	})
}

// TestServiceAPIsRequireTheToken: with an OAuth client configured, the
// commerce, credit and entitlements APIs take only an issued JWT; the
// Enrollment API still takes only the API key.
func TestServiceAPIsRequireTheToken(t *testing.T) {
	coursePut := `{"id":"` + course + `","name":"Demo","modes":[{"name":"audit","currency":"USD","price":0,"sku":"A"}]}`
	endpoints := []struct {
		name, method, path, body string
		okStatus                 int
	}{
		{"course PUT", http.MethodPut, lms.CommerceCoursesPath + course + "/", coursePut, 200},
		{"course GET", http.MethodGet, lms.CommerceCoursesPath + course + "/", "", 404},
		{"credit PUT", http.MethodPut, lms.CreditCoursesPath + course + "/", `{"course_key":"` + course + `","enabled":true}`, 201},
		{"credit GET", http.MethodGet, lms.CreditCoursesPath + course + "/", "", 404},
		{"entitlement POST", http.MethodPost, lms.EntitlementsPath, `{"user":"alice","course_uuid":"c-1","mode":"verified","order_number":"EDX-1"}`, 201},
		{"entitlement DELETE", http.MethodDelete, lms.EntitlementsPath + "nope/", "", 404},
	}
	creds := []struct {
		name       string
		auth       func(valid, revoked string) string
		apiKey     string
		wantDetail string // "" when accepted
	}{
		{name: "valid token", auth: func(v, _ string) string { return "JWT " + v }},
		{name: "nothing", auth: func(string, string) string { return "" }, wantDetail: "Authentication credentials were not provided."},
		{name: "the API key only", auth: func(string, string) string { return "" }, apiKey: key, wantDetail: "Authentication credentials were not provided."},
		{name: "Bearer scheme", auth: func(v, _ string) string { return "Bearer " + v }, wantDetail: "Authentication credentials were not provided."},
		{name: "garbage", auth: func(string, string) string { return "JWT not.a.token" }, wantDetail: "Error decoding signature."},
		{name: "revoked token", auth: func(_, r string) string { return "JWT " + r }, wantDetail: "Error decoding signature."},
	}
	for _, ep := range endpoints {
		for _, cr := range creds {
			t.Run(ep.name+"/"+cr.name, func(t *testing.T) {
				s, srv := start(t, oauthOpts())
				revoked := issue(t, srv)
				s.RevokeTokens()
				valid := issue(t, srv)
				a := call(t, ep.method, srv.URL+ep.path, cr.auth(valid, revoked), cr.apiKey, ep.body)
				if cr.wantDetail == "" {
					require.Equal(t, ep.okStatus, a.status, a.body)
					return
				}
				require.Equal(t, http.StatusUnauthorized, a.status, a.body)
				require.Equal(t, map[string]any{"detail": cr.wantDetail}, a.json(t))
				require.Equal(t, `JWT realm="api"`, a.header.Get("WWW-Authenticate"))
				calls := s.Calls()
				require.Equal(t, http.StatusUnauthorized, calls[len(calls)-1].Status, "recorded with its answer")
			})
		}
	}

	t.Run("expired token", func(t *testing.T) {
		t.Parallel()
		opts := oauthOpts()
		opts.TokenTTL = time.Second
		_, srv := start(t, opts)
		tok := issue(t, srv)
		time.Sleep(2100 * time.Millisecond)
		a := call(t, http.MethodPut, srv.URL+lms.CreditCoursesPath+course+"/", "JWT "+tok, "", `{"course_key":"`+course+`","enabled":true}`)
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Equal(t, "Signature has expired.", a.json(t)["detail"])
	})

	t.Run("enrollment keeps the API key", func(t *testing.T) {
		_, srv := start(t, oauthOpts())
		tok := issue(t, srv)
		a := call(t, http.MethodPost, srv.URL+lms.EnrollmentPath, "JWT "+tok, "", enrollBody("alice", "audit", course, true))
		require.Equal(t, http.StatusUnauthorized, a.status, "a token is not the API key")
		a = call(t, http.MethodPost, srv.URL+lms.EnrollmentPath, "", key, enrollBody("alice", "audit", course, true))
		require.Equal(t, http.StatusOK, a.status, a.body)
	})
}

// TestCreditCourse: the credit course API creates, then updates, and
// checks the course key.
func TestCreditCourse(t *testing.T) {
	s, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
	put := func(path, body string) answer {
		return call(t, http.MethodPut, srv.URL+lms.CreditCoursesPath+path+"/", "", key, body)
	}
	a := put(course, `{"course_key":"`+course+`","enabled":true}`)
	require.Equal(t, http.StatusCreated, a.status, a.body)
	require.Equal(t, map[string]any{"course_key": course, "enabled": true}, a.json(t))
	a = put(course, `{"course_key":"`+course+`","enabled":false}`)
	require.Equal(t, http.StatusOK, a.status, a.body)
	cc, ok := s.CreditCourse(course)
	require.True(t, ok)
	require.Equal(t, lms.CreditCourse{CourseKey: course, Enabled: false}, cc)

	for _, bad := range []struct{ path, body, want string }{
		{course, `{"enabled":true}`, `{"course_key":["This field is required."]}`},
		{course, `{"course_key":"` + course + `","enabled":"maybe"}`, `{"enabled":["Must be a valid boolean."]}`},
		{"nonsense", `{"course_key":"nonsense","enabled":true}`, `{"course_key":["[nonsense] is not a valid course key."]}`},
		{other, `{"course_key":"` + course + `","enabled":true}`, `{"detail":"course_key in the body does not match the URL."}`},
		{course, `[]`, `{"detail":"JSON parse error."}`},
	} {
		a := put(bad.path, bad.body)
		require.Equal(t, http.StatusBadRequest, a.status, bad.body)
		require.JSONEq(t, bad.want, a.body)
	}
	_, ok = s.CreditCourse(other)
	require.False(t, ok)

	a = call(t, http.MethodGet, srv.URL+lms.CreditCoursesPath+course+"/", "", key, "")
	require.Equal(t, http.StatusOK, a.status)
	var got lms.CreditCourse
	require.NoError(t, json.Unmarshal([]byte(a.body), &got))
	require.Equal(t, cc, got)
}
