package lms_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
)

// clock is a settable time source for the token cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func entitlement(user string) lms.EntitlementRequest {
	return lms.EntitlementRequest{User: user, CourseUUID: "0f0c4b5e-8f5b-4e2a-9d2c-7a1d9f1e2b3c", Mode: "verified", OrderNumber: "EDX-100001"}
}

// TestOAuthTokenSharedAcrossConcurrentCalls: many calls at once fetch one
// token, and later calls reuse it.
func TestOAuthTokenSharedAcrossConcurrentCalls(t *testing.T) {
	s := lmstest.New(lmstest.Options{APIKey: testKey, Seed: 1, OAuthClientID: oauthID, OAuthClientSecret: oauthSecret})
	// A slow token endpoint: every call below arrives while the first
	// fetch is under way.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == lms.TokenPath {
			time.Sleep(200 * time.Millisecond)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	c := lms.NewClient(srv.URL, testKey, 2*time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret}))
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := c.CreateEntitlement(context.Background(), entitlement("learner"), fmt.Sprint("key-", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for range 5 {
		_, err := c.CreateEntitlement(context.Background(), entitlement("later"), "")
		require.NoError(t, err)
	}
	require.Equal(t, 1, s.Stats().TokensIssued)
	auths := map[string]bool{}
	for _, call := range s.Calls() {
		if call.Path == lms.TokenPath {
			continue
		}
		require.Equal(t, http.StatusCreated, call.Status)
		auths[call.Authorization] = true
	}
	require.Len(t, auths, 1, "every call carries the one token")
}

// TestOAuthTokenRenewal: a cached token is used until a minute before it
// expires, then replaced.
func TestOAuthTokenRenewal(t *testing.T) {
	const ttl = time.Hour
	tests := []struct {
		name       string
		after      time.Duration
		wantTokens int
	}{
		{name: "reused at once", after: 0, wantTokens: 1},
		{name: "reused until a minute before expiry", after: ttl - 61*time.Second, wantTokens: 1},
		{name: "renewed within the last minute", after: ttl - 60*time.Second, wantTokens: 2},
		{name: "renewed once expired", after: 2 * ttl, wantTokens: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, base := standIn(t, lmstest.Options{APIKey: testKey, Seed: 1, OAuthClientID: oauthID, OAuthClientSecret: oauthSecret, TokenTTL: ttl})
			clk := &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			c := lms.NewClient(base, testKey, time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret, Now: clk.Now}))
			_, err := c.CreateEntitlement(context.Background(), entitlement("a"), "")
			require.NoError(t, err)
			clk.Add(tc.after)
			_, err = c.CreateEntitlement(context.Background(), entitlement("b"), "")
			require.NoError(t, err)
			require.Equal(t, tc.wantTokens, s.Stats().TokensIssued)
		})
	}

	t.Run("a short-lived token is renewed halfway", func(t *testing.T) {
		s, base := standIn(t, lmstest.Options{APIKey: testKey, Seed: 1, OAuthClientID: oauthID, OAuthClientSecret: oauthSecret, TokenTTL: 10 * time.Second})
		clk := &clock{now: time.Now()}
		c := lms.NewClient(base, testKey, time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret, Now: clk.Now}))
		for _, step := range []struct {
			after time.Duration
			want  int
		}{{0, 1}, {4 * time.Second, 1}, {time.Second, 2}} {
			clk.Add(step.after)
			_, err := c.CreateEntitlement(context.Background(), entitlement("a"), "")
			require.NoError(t, err)
			require.Equal(t, step.want, s.Stats().TokensIssued)
		}
	})
}

// TestOAuthRefetchOn401: a token the LMS no longer takes is dropped and the
// call made once more with a new one.
func TestOAuthRefetchOn401(t *testing.T) {
	s, base := standIn(t, lmstest.Options{APIKey: testKey, Seed: 1, OAuthClientID: oauthID, OAuthClientSecret: oauthSecret})
	c := lms.NewClient(base, testKey, time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret}))
	pc := lms.PublishedCourse{ID: courseID, Name: "Demo", Modes: []lms.PublishedMode{{Name: "audit", Currency: "USD", SKU: "A"}}}
	require.NoError(t, c.PublishCourse(context.Background(), pc))
	s.RevokeTokens()
	require.NoError(t, c.PublishCourse(context.Background(), pc))
	require.Equal(t, 2, s.Stats().TokensIssued)

	var got []string
	for _, call := range s.Calls() {
		got = append(got, call.Method+" "+call.Path+" "+http.StatusText(call.Status))
	}
	put := "PUT " + lms.CommerceCoursesPath + courseID + "/ "
	require.Equal(t, []string{"POST " + lms.TokenPath + " OK", put + "OK", put + "Unauthorized", "POST " + lms.TokenPath + " OK", put + "OK"}, got)
	calls := s.Calls()
	require.Equal(t, calls[1].Authorization, calls[2].Authorization, "the revoked token")
	require.NotEqual(t, calls[2].Authorization, calls[4].Authorization, "a new token")
}

// fakeOAuthLMS is an LMS whose token endpoint issues numbered tokens and
// whose other endpoints answer apiStatus, counting both.
func fakeOAuthLMS(t *testing.T, tokenStatus, apiStatus int) (base string, tokenForms chan url.Values, apiAuth chan http.Header, tokens, apiCalls *atomic.Int64) {
	t.Helper()
	tokenForms, apiAuth = make(chan url.Values, 10), make(chan http.Header, 10)
	tokens, apiCalls = &atomic.Int64{}, &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == lms.TokenPath {
			n := tokens.Add(1)
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			form.Set("_content_type", r.Header.Get("Content-Type"))
			form.Set("_method", r.Method)
			tokenForms <- form
			w.WriteHeader(tokenStatus)
			switch tokenStatus {
			case http.StatusOK:
			case http.StatusUnauthorized:
				_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
				return
			default:
				_, _ = io.WriteString(w, `{"error":"server_error"}`)
				return
			}
			_, _ = fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":36000,"token_type":"JWT","scope":"read write"}`, n)
			return
		}
		apiCalls.Add(1)
		apiAuth <- r.Header.Clone()
		w.WriteHeader(apiStatus)
		if apiStatus == http.StatusUnauthorized {
			_, _ = io.WriteString(w, `{"detail":"Error decoding signature."}`)
			return
		}
		_, _ = io.WriteString(w, `{"uuid":"u-1"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, tokenForms, apiAuth, tokens, apiCalls
}

// TestOAuthRequests checks the token request (edx-rest-api-client's form)
// and the retry rules against a fake LMS.
func TestOAuthRequests(t *testing.T) {
	tests := []struct {
		name                     string
		tokenStatus, apiStatus   int
		wantTokens, wantAPICalls int64
		wantStatus               int
		wantClass                lms.Class
		wantMessage              string
	}{
		{name: "accepted", tokenStatus: 200, apiStatus: 201, wantTokens: 1, wantAPICalls: 1},
		{name: "refused twice: one retry only", tokenStatus: 200, apiStatus: 401, wantTokens: 2, wantAPICalls: 2,
			wantStatus: 401, wantClass: lms.ClassServer, wantMessage: "Error decoding signature."},
		{name: "bad client credentials: no API call", tokenStatus: 401, apiStatus: 201, wantTokens: 1, wantAPICalls: 0,
			wantStatus: 401, wantClass: lms.ClassConfiguration, wantMessage: "the LMS refused the OAuth client: invalid_client"},
		{name: "token endpoint down: retryable", tokenStatus: 503, apiStatus: 201, wantTokens: 1, wantAPICalls: 0,
			wantStatus: 503, wantClass: lms.ClassServer, wantMessage: "server_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, forms, auths, tokens, apiCalls := fakeOAuthLMS(t, tc.tokenStatus, tc.apiStatus)
			c := lms.NewClient(base, testKey, time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret}))
			_, err := c.CreateEntitlement(context.Background(), entitlement("a"), "key-1")
			require.Equal(t, tc.wantTokens, tokens.Load())
			require.Equal(t, tc.wantAPICalls, apiCalls.Load())

			form := <-forms
			require.Equal(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {oauthID}, "client_secret": {oauthSecret},
				"token_type": {"jwt"}, "_content_type": {"application/x-www-form-urlencoded"}, "_method": {"POST"}}, form)
			if tc.wantAPICalls > 0 {
				h := <-auths
				require.Equal(t, "JWT tok-1", h.Get("Authorization"))
				require.Empty(t, h.Get("X-Edx-Api-Key"))
				require.Equal(t, "key-1", h.Get("Idempotency-Key"))
			}
			if tc.wantStatus == 0 {
				require.NoError(t, err)
				return
			}
			var le *lms.Error
			require.True(t, errors.As(err, &le), "%v", err)
			require.Equal(t, tc.wantStatus, le.StatusCode)
			require.Equal(t, tc.wantClass, le.Class)
			require.Equal(t, tc.wantMessage, le.Message)
			require.Equal(t, tc.tokenStatus == 503, le.Retryable())
		})
	}
}

// TestOAuthConfiguration: without a client the API key is used, as before;
// half a client is a configuration error of each call; a custom token URL
// is used as given.
func TestOAuthConfiguration(t *testing.T) {
	t.Run("no client: the API key", func(t *testing.T) {
		s, base := standIn(t, lmstest.Options{APIKey: testKey, Seed: 1})
		_, err := lms.NewClient(base, testKey, time.Second, lms.WithOAuth(lms.OAuth{})).CreateEntitlement(context.Background(), entitlement("a"), "")
		require.NoError(t, err)
		calls := s.Calls()
		require.Len(t, calls, 1)
		require.Equal(t, testKey, calls[0].APIKey)
		require.Empty(t, calls[0].Authorization)
	})
	t.Run("half a client", func(t *testing.T) {
		_, base := standIn(t, lmstest.Options{APIKey: testKey, Seed: 1})
		err := lms.NewClient(base, testKey, time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID})).DeleteEntitlement(context.Background(), "u", "")
		var le *lms.Error
		require.True(t, errors.As(err, &le))
		require.Equal(t, lms.ClassConfiguration, le.Class)
		require.Contains(t, le.Message, "both an id and a secret")
	})
	t.Run("neither a client nor a key", func(t *testing.T) {
		err := lms.NewClient("http://127.0.0.1:1", "", time.Second).PublishCreditCourse(context.Background(), courseID)
		var le *lms.Error
		require.True(t, errors.As(err, &le))
		require.Equal(t, lms.ClassConfiguration, le.Class)
	})
	t.Run("a token URL elsewhere", func(t *testing.T) {
		s, base := standIn(t, lmstest.Options{Seed: 1, OAuthClientID: oauthID, OAuthClientSecret: oauthSecret})
		// The stand-in serves the path with a trailing slash too, as
		// ecommerce-worker calls it.
		c := lms.NewClient("http://127.0.0.1:1", "", time.Second, lms.WithOAuth(lms.OAuth{TokenURL: base + lms.TokenPath + "/", ClientID: oauthID, ClientSecret: oauthSecret}))
		err := c.PublishCreditCourse(context.Background(), courseID)
		var le *lms.Error
		require.True(t, errors.As(err, &le))
		require.Equal(t, lms.ClassNetwork, le.Class, "the token came; the API is elsewhere and down")
		require.Equal(t, 1, s.Stats().TokensIssued)
	})
	t.Run("a caller giving up while the token is fetched", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		c := lms.NewClient(srv.URL, "", 5*time.Second, lms.WithOAuth(lms.OAuth{ClientID: oauthID, ClientSecret: oauthSecret}))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := c.PublishCreditCourse(ctx, courseID)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}
