package lms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// TokenPath is the LMS's OAuth2 token endpoint (edx-platform's
// oauth_dispatch AccessTokenView), relative to the LMS root.
const TokenPath = "/oauth2/access_token"

// tokenMargin is how long before its expiry a cached token is replaced, so
// that no call goes out with a token about to lapse on the way.
const tokenMargin = 60 * time.Second

// tokenFetchTimeout bounds a token request when the client has no
// per-call timeout: every caller waiting for a token waits on it.
const tokenFetchTimeout = 30 * time.Second

// OAuth is an OAuth2 client registered in the LMS (Otto's
// BACKEND_SERVICE_EDX_OAUTH2_KEY and _SECRET): its client-credentials JWT
// authenticates the commerce, credit and entitlements calls, as Otto's
// oauth_api_client does. The Enrollment API keeps X-Edx-Api-Key.
type OAuth struct {
	// TokenURL is the token endpoint; {LMS root}/oauth2/access_token when
	// empty.
	TokenURL     string
	ClientID     string
	ClientSecret string
	// Now is the clock deciding when a cached token is due for renewal;
	// time.Now when nil.
	Now func() time.Time
}

// WithOAuth authenticates the commerce, credit and entitlements calls with
// a client-credentials JWT of o, fetched once and cached until shortly
// before it expires. A zero o (no client id and no secret) changes nothing:
// those calls keep sending X-Edx-Api-Key. Only one of the two is a
// configuration error, reported by each of those calls.
func WithOAuth(o OAuth) Option {
	return func(c *Client) {
		if o.ClientID == "" && o.ClientSecret == "" {
			return
		}
		if o.TokenURL == "" {
			o.TokenURL = c.baseURL + TokenPath
		}
		if o.Now == nil {
			o.Now = time.Now
		}
		c.oauth = &tokenSource{cfg: o, client: c}
	}
}

// tokenSource fetches and caches the client's token. One fetch runs at a
// time: callers arriving while it runs wait for its result.
type tokenSource struct {
	cfg    OAuth
	client *Client

	mu      sync.Mutex
	token   string
	renewAt time.Time
	flight  *tokenFlight
}

// tokenFlight is a fetch under way; done is closed once tok or err is set.
type tokenFlight struct {
	done chan struct{}
	tok  string
	err  error
}

// get returns a valid token: the cached one, or a new one.
func (s *tokenSource) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.token != "" && s.cfg.Now().Before(s.renewAt) {
		tok := s.token
		s.mu.Unlock()
		return tok, nil
	}
	f := s.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		// The fetch outlives a caller that gives up, since others may be
		// waiting for it; it is bounded by its own timeout.
		go s.fetch(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return "", &Error{Class: ClassNetwork, Message: "gave up waiting for an OAuth token", URL: s.cfg.TokenURL,
			Err: fmt.Errorf("%w (waiting for an OAuth token)", ctx.Err())}
	}
}

// drop forgets tok, which the LMS refused, unless a newer token has
// replaced it already.
func (s *tokenSource) drop(tok string) {
	s.mu.Lock()
	if s.token == tok {
		s.token = ""
	}
	s.mu.Unlock()
}

func (s *tokenSource) fetch(ctx context.Context, f *tokenFlight) {
	if s.client.timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tokenFetchTimeout)
		defer cancel()
	}
	// The lifetime counts from before the request: the token may have
	// been issued at any moment until its answer came.
	issued := s.cfg.Now()
	tok, ttl, err := s.request(ctx)
	s.mu.Lock()
	if err == nil && ttl > 0 {
		margin := min(tokenMargin, ttl/2)
		s.token, s.renewAt = tok, issued.Add(ttl-margin)
	}
	s.flight = nil
	s.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// tokenAnswer is the token endpoint's JSON answer.
type tokenAnswer struct {
	AccessToken string  `json:"access_token"`
	ExpiresIn   float64 `json:"expires_in"`
	TokenType   string  `json:"token_type"`
}

// request asks the token endpoint for a JWT, as edx-rest-api-client does:
// a form POST of the client credentials with token_type=jwt.
func (s *tokenSource) request(ctx context.Context) (string, time.Duration, error) {
	u := s.cfg.TokenURL
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.cfg.ClientID},
		"client_secret": {s.cfg.ClientSecret},
		"token_type":    {"jwt"},
	}
	r, err := s.client.doWith(ctx, call{method: http.MethodPost, url: u, body: []byte(form.Encode()),
		contentType: "application/x-www-form-urlencoded"})
	if err != nil {
		var le *Error
		if errors.As(err, &le) && le.StatusCode >= 400 && le.StatusCode < 500 &&
			le.StatusCode != http.StatusRequestTimeout && le.StatusCode != http.StatusTooManyRequests {
			// invalid_client and the like: the credentials are wrong, and
			// asking again will not change that.
			le.Class = ClassConfiguration
			le.Message = "the LMS refused the OAuth client: " + le.Message
		}
		return "", 0, err
	}
	var a tokenAnswer
	if err := json.Unmarshal(r.body, &a); err != nil || a.AccessToken == "" {
		return "", 0, &Error{Class: ClassServer, StatusCode: r.status, URL: u,
			Message: "the token endpoint answered without an access_token: " + snippet(r.body)}
	}
	if a.TokenType != "" && !strings.EqualFold(a.TokenType, "jwt") {
		return "", 0, &Error{Class: ClassConfiguration, StatusCode: r.status, URL: u,
			Message: fmt.Sprintf("the token endpoint issued a %q token, not a JWT", a.TokenType)}
	}
	return a.AccessToken, time.Duration(a.ExpiresIn * float64(time.Second)), nil
}

// checkServiceConfig reports what keeps the commerce, credit and
// entitlements calls from being made.
func (c *Client) checkServiceConfig(path string) error {
	switch {
	case c.baseURL == "":
		return &Error{Class: ClassConfiguration, Message: "LMS base URL is not configured", URL: path}
	case c.oauth != nil && (c.oauth.cfg.ClientID == "" || c.oauth.cfg.ClientSecret == ""):
		return &Error{Class: ClassConfiguration, Message: "the LMS OAuth client needs both an id and a secret", URL: c.baseURL + path}
	case c.oauth == nil && c.apiKey == "":
		return &Error{Class: ClassConfiguration, Message: "neither an LMS OAuth client nor an LMS API key is configured", URL: c.baseURL + path}
	}
	return nil
}

// service makes a call to the commerce, credit or entitlements API: with
// the OAuth token when the client has one, else with the API key. A 401
// answer to a token drops it, and the call is made once more with a new
// one (the LMS may have revoked it, or its clock runs ahead of ours).
func (c *Client) service(ctx context.Context, method, u string, body []byte, idempotencyKey string) (response, error) {
	cl := call{method: method, url: u, body: body, idempotencyKey: idempotencyKey}
	if c.oauth == nil {
		cl.apiKey = true
		return c.doWith(ctx, cl)
	}
	for attempt := 1; ; attempt++ {
		tok, err := c.oauth.get(ctx)
		if err != nil {
			return response{}, err
		}
		cl.authorization = "JWT " + tok
		r, err := c.doWith(ctx, cl)
		var le *Error
		if attempt == 1 && errors.As(err, &le) && le.StatusCode == http.StatusUnauthorized {
			c.oauth.drop(tok)
			continue
		}
		return r, err
	}
}
