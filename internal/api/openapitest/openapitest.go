// Package openapitest keeps the API's OpenAPI document (api.Document) true:
// it checks a request the tests sent and the answer they got against it,
// with kin-openapi (openapi3, openapi3filter and its gorilla/mux router).
// internal/apptest calls it for every request of Env.Do and Env.Send, so
// that an answer, a status or a route that drifts from the document fails
// the test that saw it.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"fulfill/internal/api"
)

// Validator checks exchanges against one document.
type Validator struct {
	Doc    *openapi3.T
	router routers.Router
}

// Default is the validator of api.Document(), loaded and checked once.
var Default = sync.OnceValues(func() (*Validator, error) { return New(api.Document()) })

// New loads and validates an OpenAPI document.
func New(doc []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: load: %w", err)
	}
	if err := t.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi: the document is not valid: %w", err)
	}
	r, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("openapi: router: %w", err)
	}
	return &Validator{Doc: t, router: r}, nil
}

// Exchange is one request as sent and the answer as received.
type Exchange struct {
	Request     *http.Request // its Body is not read: RequestBody is the body sent
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// undocumentedOK are the answers a path or method the document does not
// describe may get: not found, not allowed, or the mux's redirect to the
// path with its slash.
func undocumentedOK(status int) bool {
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusMovedPermanently, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// Check reports how the exchange departs from the document, nil when it
// does not:
//   - a path under /api/v2/ the document does not describe, or a method it
//     does not describe on a path it does, must be answered 404 or 405 (the
//     service has no such route);
//   - a request the document calls invalid (body, parameters, credentials)
//     must be refused with a 4xx;
//   - every answer must be one the document describes for the operation:
//     its status, content type and body schema.
//
// Paths outside the document (the storefront's pages, the dashboard) are
// not checked.
func (v *Validator) Check(x Exchange) error {
	ctx := context.Background()
	req := x.Request.Clone(ctx)
	req.Body, req.GetBody, req.ContentLength = nil, nil, int64(len(x.RequestBody))
	if x.RequestBody != nil {
		body := x.RequestBody
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.Body, _ = req.GetBody()
	}
	what := req.Method + " " + req.URL.RequestURI()
	route, params, err := v.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		if strings.HasPrefix(req.URL.Path, "/api/v2/") && !undocumentedOK(x.Status) {
			return fmt.Errorf("openapi: %s was answered %d, but the document has no such path: describe it in internal/api/openapi.yaml", what, x.Status)
		}
		return nil
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if !undocumentedOK(x.Status) {
			return fmt.Errorf("openapi: %s was answered %d, but the document has no %s operation on this path: describe it in internal/api/openapi.yaml", what, x.Status, req.Method)
		}
		return nil
	case err != nil:
		return fmt.Errorf("openapi: %s: %w", what, err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    authenticated,
		IncludeResponseStatus: true,
		MultiError:            true,
		SkipSettingDefaults:   true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (x.Status < 400 || x.Status >= 500) {
		return fmt.Errorf("openapi: %s (operation %s): the document calls this request invalid, yet it was answered %d: %w",
			what, route.Operation.OperationID, x.Status, err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.Status, Header: x.Header, Options: opts}
	out.SetBodyBytes(x.Body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("openapi: %s (operation %s): the answer %d (%s) is not what the document describes: %w\nbody: %s",
			what, route.Operation.OperationID, x.Status, x.Header.Get("Content-Type"), err, clip(x.Body))
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// authenticated says whether the request carries the credentials of a
// security scheme at all; whether they are good is the service's to say.
func authenticated(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	s := in.SecurityScheme
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		if strings.EqualFold(scheme, "Bearer") {
			return nil
		}
	case s.Type == "apiKey" && s.In == "header" && s.Name == "Authorization":
		if strings.EqualFold(scheme, "JWT") {
			return nil
		}
	case s.Type == "apiKey" && s.In == "cookie":
		if _, err := r.Cookie(s.Name); err == nil {
			return nil
		}
	case s.Type == "apiKey" && s.In == "header":
		if r.Header.Get(s.Name) != "" {
			return nil
		}
	}
	return in.NewError(nil)
}
