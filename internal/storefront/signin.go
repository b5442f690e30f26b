package storefront

import (
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"fulfill/internal/auth"
	"fulfill/internal/order"
)

// defaultNext is where sign-in leads when the link named no local page.
const defaultNext = "/basket/"

type signInView struct {
	page
	Register bool
	Action   string
	Next     string
	Username string
	Email    string
	FullName string
	// Errors are keyed by field name; Summary lists them for the alert.
	Errors  map[string]string
	Summary []fieldError
	// OtherURL is the register page from sign-in and the reverse.
	OtherURL string
}

type fieldError struct{ Field, Message string }

func (v *signInView) add(field, msg string) {
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	v.Errors[field] = msg
	v.Summary = append(v.Summary, fieldError{field, msg})
}

// nextFrom returns the local page to go to after sign-in; anything else
// (another site, a scheme-relative URL) becomes the default: no open
// redirect.
func nextFrom(next string) string {
	if localPath(next) {
		return next
	}
	return defaultNext
}

func (a *app) own(register bool) bool {
	if register {
		return a.ownRegister
	}
	return a.ownLogin
}

func (a *app) signInView(register bool, next string) *signInView {
	v := &signInView{Register: register, Next: next}
	v.SignInURL, v.RegisterURL = a.signInURL(next), a.registerURL(next)
	if register {
		v.Title, v.Action, v.OtherURL = "Create an account", "/register", a.signInURL(next)
	} else {
		v.Title, v.Action, v.OtherURL = "Sign in", "/login", a.registerURL(next)
	}
	return v
}

// handleSignInPage is GET /login and GET /register: the demo form, or a
// redirect to the LMS's page with next pointing back here.
func handleSignInPage(a *app, register bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := nextFrom(r.URL.Query().Get("next"))
		if !a.own(register) {
			to := a.signInURL(next)
			if register {
				to = a.registerURL(next)
			}
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		a.render(w, r, http.StatusOK, "signin", a.signInView(register, next))
	})
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_.@+-]{2,30}$`)

// handleSignIn is POST /login and POST /register of the demo: no password;
// it signs the learner in with a JWT of the service's own secret in the
// edX JWT cookie pair, then goes to next.
func handleSignIn(a *app, register bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.own(register) {
			a.message(w, r, http.StatusNotFound, "Page not found", "Sign-in happens on the LMS.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			a.message(w, r, http.StatusBadRequest, "Form not readable", "The form could not be read; go back and try again.")
			return
		}
		v := a.signInView(register, nextFrom(r.PostFormValue("next")))
		v.Username = strings.TrimSpace(r.PostFormValue("username"))
		v.Email = strings.TrimSpace(r.PostFormValue("email"))
		v.FullName = strings.TrimSpace(r.PostFormValue("full_name"))
		if !usernameRE.MatchString(v.Username) {
			v.add("username", "Enter a username of 2 to 30 letters, digits or . _ @ + -")
		}
		if register || v.Email != "" {
			if addr, err := mail.ParseAddress(v.Email); err != nil || addr.Address != v.Email || len(v.Email) > 254 {
				v.add("email", "Enter an email address such as ann@example.com")
			}
		}
		if register && (v.FullName == "" || utf8.RuneCountInString(v.FullName) > 100 || strings.IndexFunc(v.FullName, unicode.IsControl) >= 0) {
			v.add("full_name", "Enter your full name (at most 100 characters)")
		}
		if len(v.Errors) > 0 {
			a.render(w, r, http.StatusUnprocessableEntity, "signin", v)
			return
		}
		ctx := r.Context()
		u := order.User{Username: v.Username, Email: v.Email, FullName: v.FullName}
		known, err := a.d.Store.UserByName(ctx, v.Username)
		switch {
		case err == nil && register:
			v.add("username", "This username is taken. Sign in instead, or choose another one.")
			a.render(w, r, http.StatusUnprocessableEntity, "signin", v)
			return
		case err == nil:
			// Sign-in keeps what registration recorded, unless retyped.
			if u.Email == "" {
				u.Email = known.Email
			}
			if u.FullName == "" {
				u.FullName = known.FullName
			}
		case !errors.Is(err, order.ErrNotFound):
			a.fail(w, r, err)
			return
		}
		if u.Email == "" {
			u.Email = u.Username + "@example.com"
		}
		if register {
			if _, err := a.d.Store.UpsertUser(ctx, u); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		if err := a.setSession(w, r, u); err != nil {
			a.fail(w, r, err)
			return
		}
		a.d.Log.Info("demo_sign_in", "user", u.Username, "register", register)
		http.Redirect(w, r, v.Next, http.StatusSeeOther)
	})
}

// setSession signs a token for u with the service's secret and sets it as
// the edX JWT cookie pair: header.payload in one cookie, the signature in
// the other, both HttpOnly and SameSite=Lax (a purchase link followed from
// the marketing site still carries them).
func (a *app) setSession(w http.ResponseWriter, r *http.Request, u order.User) error {
	now := a.d.Now()
	c := auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: u.Username, Issuer: "fulfill-demo",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(a.d.SessionTTL))},
		PreferredUsername: u.Username, Email: u.Email, Name: u.FullName,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(a.d.JWTSecret))
	if err != nil {
		return err
	}
	dot := strings.LastIndexByte(tok, '.')
	secure := r.TLS != nil || strings.HasPrefix(a.d.PublicURL, "https://")
	for name, val := range map[string]string{auth.CookieHeaderPayload: tok[:dot], auth.CookieSignature: tok[dot+1:]} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: val, Path: "/", MaxAge: int(a.d.SessionTTL.Seconds()),
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	}
	return nil
}

// handleSignOut is POST /logout: it clears the cookie pair and goes to next
// (a local page) or to the sign-in page.
func handleSignOut(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{auth.CookieHeaderPayload, auth.CookieSignature} {
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
		next := r.PostFormValue("next")
		if !localPath(next) {
			next = "/login"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}
