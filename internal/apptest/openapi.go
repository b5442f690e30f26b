package apptest

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/stretchr/testify/require"

	"fulfill/internal/api/openapitest"
)

// CheckAPI fails the test when an exchange with the service departs from
// the API's OpenAPI document (internal/api/openapi.yaml): an answer whose
// status, content type or body the document does not describe for the
// operation, a request the document calls invalid that was not refused
// with a 4xx, or a path under /api/v2/ (or a method) the document lacks
// that the service nonetheless served. Paths the document does not
// describe (pages, the dashboard) are not checked. reqBody is the body
// that was sent; body the one received.
func (e *Env) CheckAPI(req *http.Request, reqBody []byte, res *http.Response, body []byte) {
	e.T.Helper()
	v, err := openapitest.Default()
	require.NoError(e.T, err)
	require.NoError(e.T, v.Check(openapitest.Exchange{Request: req, RequestBody: reqBody, Status: res.StatusCode,
		Header: res.Header, Body: body}))
}

// Send sends a request made by the test as a client makes it (any method,
// headers, body encoding, credentials) to the service, checks the exchange
// against the OpenAPI document (CheckAPI), and returns the answer with its
// body read. A relative URL ("/api/v2/…") is sent to the service. Redirects
// are not followed.
func (e *Env) Send(req *http.Request) (*http.Response, []byte) {
	e.T.Helper()
	if req.URL.Host == "" {
		u, err := req.URL.Parse(e.URL + req.URL.RequestURI())
		require.NoError(e.T, err)
		req.URL, req.Host = u, u.Host
	}
	var sent []byte
	if req.GetBody != nil {
		rc, err := req.GetBody()
		require.NoError(e.T, err)
		sent, err = io.ReadAll(rc)
		require.NoError(e.T, err)
	} else if req.Body != nil && req.Body != http.NoBody {
		var err error
		sent, err = io.ReadAll(req.Body)
		require.NoError(e.T, err)
		req.Body = io.NopCloser(bytes.NewReader(sent))
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	require.NoError(e.T, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(e.T, err)
	e.CheckAPI(req, sent, res, body)
	return res, body
}

// NewRequest is http.NewRequest for Send: a path of the service, and a
// body given as text ("" for none).
func (e *Env) NewRequest(method, path, body string) *http.Request {
	e.T.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(e.T, err)
	return req
}
