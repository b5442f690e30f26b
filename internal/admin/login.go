package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"fulfill/internal/auth"
	"fulfill/internal/order"
)

// DemoUser is the staff member the demo sign-in signs in as.
const DemoUser = "demo-staff"

type loginPage struct {
	pageBase
	Next  string
	Error string
}

func (a *app) loginView(r *http.Request, next, msg string) *loginPage {
	return &loginPage{pageBase: a.base(r, "Sign in", ""), Next: localPath(next, Prefix), Error: msg}
}

func handleLoginPage(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.render(w, r, "login", a.loginView(r, r.URL.Query().Get("next"), ""))
	})
}

// handleLogin takes a pasted staff token, or in demo mode signs one for
// the demo staff user, and stores it in the edX JWT cookie pair: the header
// and payload in one cookie, the signature in an HttpOnly other. Only the
// cross-origin check guards it: there is no session yet to bind a token to.
func handleLogin(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := r.PostFormValue("next")
		raw := strings.TrimSpace(r.PostFormValue("token"))
		raw = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(raw, "JWT "), "Bearer "))
		if r.PostFormValue("demo") != "" {
			if !a.Demo {
				a.renderStatus(w, r, http.StatusForbidden, "login", a.loginView(r, next, "The demo sign-in is only offered in demo mode."))
				return
			}
			var err error
			raw, err = auth.Sign(a.Secret, DemoUser, true, 8*time.Hour, a.Now())
			if err != nil {
				a.Log.Error("dashboard: sign demo token", "error", err)
				a.renderStatus(w, r, http.StatusInternalServerError, "login", a.loginView(r, next, "Could not sign a demo token."))
				return
			}
		}
		u, err := a.Verifier.User(raw)
		if err != nil {
			a.Log.Info("dashboard: sign-in refused", "error", err)
			a.renderStatus(w, r, http.StatusUnauthorized, "login", a.loginView(r, next, "That token is not valid: "+err.Error()))
			return
		}
		if !u.IsStaff {
			a.Log.Warn("dashboard: sign-in by non-staff user refused", "user", u.Username)
			a.renderStatus(w, r, http.StatusForbidden, "login", a.loginView(r, next,
				"User "+u.Username+" is not staff. The dashboard is for support staff only."))
			return
		}
		setTokenCookies(w, r, raw, expiry(raw, a.Now()))
		a.Log.Info("dashboard: signed in", "user", u.Username)
		http.Redirect(w, r, localPath(next, Prefix), http.StatusSeeOther)
	})
}

func handleLogout(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Log.Info("dashboard: signed out", "user", sessionFrom(r.Context()).User.Username)
		setTokenCookies(w, r, "", time.Time{})
		if isHTMX(r) {
			w.Header().Set("HX-Redirect", "/dashboard/login")
			return
		}
		http.Redirect(w, r, "/dashboard/login", http.StatusSeeOther)
	})
}

// expiry reads a verified token's expiry, for the cookies' lifetime.
func expiry(raw string, now time.Time) time.Time {
	var c auth.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err == nil && c.ExpiresAt != nil {
		return c.ExpiresAt.Time
	}
	return now.Add(time.Hour)
}

// setTokenCookies writes the edX JWT cookie pair for raw (until exp), or
// clears it when raw is "".
func setTokenCookies(w http.ResponseWriter, r *http.Request, raw string, exp time.Time) {
	secure := r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
	hp, sig := "", ""
	if i := strings.LastIndexByte(raw, '.'); i > 0 {
		hp, sig = raw[:i], raw[i+1:]
	}
	for _, c := range []*http.Cookie{
		{Name: auth.CookieHeaderPayload, Value: hp},
		{Name: auth.CookieSignature, Value: sig, HttpOnly: true},
	} {
		c.Path, c.Secure, c.SameSite = "/", secure, http.SameSiteLaxMode
		if raw == "" {
			c.MaxAge = -1
		} else {
			c.Expires = exp
		}
		http.SetCookie(w, c)
	}
}

// renderForbidden is the page a signed-in non-staff user gets.
func (a *app) renderForbidden(w http.ResponseWriter, r *http.Request, u order.User) {
	a.renderError(w, r, http.StatusForbidden, "Staff only",
		"You are signed in as "+u.Username+", who is not staff. The dashboard is for support staff; sign in with a staff token to use it.")
}
