package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"fulfill/internal/auth"
	"fulfill/internal/order"
)

// keys are derived from the JWT secret, one per use.
type keys struct {
	csrf, flash []byte
}

func deriveKeys(secret string) keys {
	base := []byte(secret)
	if secret == "" {
		// No shared secret: tokens are good for this process only.
		base = make([]byte, 32)
		_, _ = rand.Read(base)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, base)
		m.Write([]byte("fulfill dashboard " + label))
		return m.Sum(nil)
	}
	return keys{csrf: derive("csrf v1"), flash: derive("flash v1")}
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken is bound to the session's token: a form from one sign-in is
// refused under another, and no server state is kept.
func (a *app) csrfToken(rawJWT string) string { return mac(a.keys.csrf, "csrf", rawJWT)[:32] }

type ctxKey int

const (
	userKey ctxKey = iota
	csrfKey
	flashKey
	statusKey
)

// session is the signed-in staff member.
type session struct {
	User order.User
	CSRF string
}

func sessionFrom(ctx context.Context) session {
	s, _ := ctx.Value(userKey).(session)
	return s
}

// requireStaff lets staff through: no or a bad token goes to the sign-in
// page, a valid token of someone else gets a 403 page. An unsafe method
// must carry the session's CSRF token (form field csrf or header
// X-CSRF-Token), on top of the cross-origin check every request passes.
func (a *app) requireStaff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := auth.Token(r)
		u, err := a.Verifier.User(raw)
		if err != nil {
			if raw != "" {
				a.Log.Info("dashboard: token refused", "path", r.URL.Path, "error", err)
			}
			a.toLogin(w, r)
			return
		}
		if !u.IsStaff {
			a.Log.Warn("dashboard: non-staff user refused", "user", u.Username, "path", r.URL.Path)
			a.renderForbidden(w, r, u)
			return
		}
		s := session{User: u, CSRF: a.csrfToken(raw)}
		if !safeMethod(r.Method) {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if !hmac.Equal([]byte(got), []byte(s.CSRF)) {
				a.Log.Warn("dashboard: CSRF token mismatch", "user", u.Username, "path", r.URL.Path)
				a.renderError(w, r, http.StatusForbidden, "Form expired",
					"This form belongs to another sign-in or was not sent by the dashboard. Reload the page and try again.")
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, s)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// toLogin sends the browser to the sign-in page, and back here after it.
func (a *app) toLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.RequestURI()
	if !safeMethod(r.Method) {
		next = Prefix
	}
	if isHTMX(r) {
		next = r.Header.Get("HX-Current-URL")
		if u, err := url.Parse(next); err == nil {
			next = u.RequestURI()
		}
	}
	target := "/dashboard/login?next=" + url.QueryEscape(localPath(next, Prefix))
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// localPath returns p when it is a dashboard path on this site, else def:
// redirects never leave the dashboard.
func localPath(p, def string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") {
		return def
	}
	if !strings.HasPrefix(u.Path, Prefix) || strings.Contains(u.Path, "/../") {
		return def
	}
	return u.RequestURI()
}

func isHTMX(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Boosted") != "true"
}
