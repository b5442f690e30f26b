package storefront_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/auth"
	"fulfill/internal/sqlstore"
)

// session reads the edX JWT cookie pair that a sign-in set.
func session(t *testing.T, p page) (hp, sig *http.Cookie) {
	t.Helper()
	for _, c := range p.Cookies {
		switch c.Name {
		case auth.CookieHeaderPayload:
			hp = c
		case auth.CookieSignature:
			sig = c
		}
	}
	require.NotNil(t, hp, "header.payload cookie")
	require.NotNil(t, sig, "signature cookie")
	return hp, sig
}

func TestDemoSignIn(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		link := "/basket/add/?sku=" + e.skus["audit"]

		form := e.get("/login?next="+url.QueryEscape(link), "")
		require.Equal(t, http.StatusOK, form.Status)
		require.Contains(t, form.Body, `<label for="username">Username</label>`)
		require.Contains(t, form.Body, `<main id="main"`)
		require.Contains(t, form.Body, `<h1>Sign in</h1>`)
		require.Contains(t, form.Body, `href="/register?next=`+url.QueryEscape(link)+`"`)

		p := e.send("POST", "/login", "", url.Values{"username": {"ann"}, "next": {link}})
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Equal(t, link, p.Location)
		hp, sig := session(t, p)
		for _, c := range []*http.Cookie{hp, sig} {
			require.True(t, c.HttpOnly, c.Name)
			require.Equal(t, http.SameSiteLaxMode, c.SameSite, c.Name)
			require.Equal(t, "/", c.Path)
			require.Positive(t, c.MaxAge)
		}
		u, err := auth.NewVerifier(secret).User(hp.Value + "." + sig.Value)
		require.NoError(t, err)
		require.Equal(t, "ann", u.Username)
		require.Equal(t, "ann@example.com", u.Email)
		require.False(t, u.IsStaff)

		// The cookies are a session: the link now makes a basket.
		req, err := http.NewRequest("GET", e.srv.URL+link, nil)
		require.NoError(t, err)
		req.AddCookie(hp)
		req.AddCookie(sig)
		res, err := noFollow.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusSeeOther, res.StatusCode)

		// No open redirect: next must be a page of this site.
		for _, next := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "/\t/evil.example",
			"javascript:alert(1)", "http:/evil.example", ""} {
			p := e.send("POST", "/login", "", url.Values{"username": {"ann"}, "next": {next}})
			require.Equal(t, http.StatusSeeOther, p.Status, next)
			require.Equal(t, "/basket/", p.Location, "next %q", next)
		}
		p = e.get("/login?next="+url.QueryEscape("https://evil.example/"), "")
		require.Contains(t, p.Body, `name="next" value="/basket/"`)

		// A bad username is shown next to its field; nothing is set.
		p = e.send("POST", "/login", "", url.Values{"username": {"a b<"}, "next": {link}})
		require.Equal(t, http.StatusUnprocessableEntity, p.Status)
		require.Contains(t, p.Body, `aria-invalid="true" aria-describedby="username-error"`)
		require.Contains(t, p.Body, `role="alert"`)
		require.Contains(t, p.Body, `value="a b&lt;"`)
		require.Empty(t, p.Cookies)
	})
}

func TestDemoRegistration(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		form := e.get("/register?next=%2Fbasket%2F", "")
		require.Equal(t, http.StatusOK, form.Status)
		for _, f := range []string{"username", "email", "full_name"} {
			require.Contains(t, form.Body, `<label for="`+f+`">`)
		}

		p := e.send("POST", "/register", "", url.Values{"username": {"carl"}, "email": {"nope"}, "full_name": {""}})
		require.Equal(t, http.StatusUnprocessableEntity, p.Status)
		require.Contains(t, p.Body, "Enter an email address")
		require.Contains(t, p.Body, "Enter your full name")

		p = e.send("POST", "/register", "", url.Values{"username": {"carl"}, "email": {"carl@example.org"},
			"full_name": {"Carl Gustav"}, "next": {"/basket/?id=3"}})
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.Equal(t, "/basket/?id=3", p.Location)
		hp, sig := session(t, p)
		u, err := auth.NewVerifier(secret).User(hp.Value + "." + sig.Value)
		require.NoError(t, err)
		require.Equal(t, "carl", u.Username)
		require.Equal(t, "carl@example.org", u.Email)
		require.Equal(t, "Carl Gustav", u.FullName)

		// The username is taken now; signing in later keeps the details.
		p = e.send("POST", "/register", "", url.Values{"username": {"carl"}, "email": {"x@example.org"}, "full_name": {"X"}})
		require.Equal(t, http.StatusUnprocessableEntity, p.Status)
		require.Contains(t, p.Body, "This username is taken")
		p = e.send("POST", "/login", "", url.Values{"username": {"carl"}})
		hp, sig = session(t, p)
		u, err = auth.NewVerifier(secret).User(hp.Value + "." + sig.Value)
		require.NoError(t, err)
		require.Equal(t, "carl@example.org", u.Email)
		require.Equal(t, "Carl Gustav", u.FullName)

		// Signing out clears the pair.
		p = e.send("POST", "/logout", "carl", url.Values{})
		require.Equal(t, http.StatusSeeOther, p.Status)
		require.Equal(t, "/login", p.Location)
		cleared := 0
		for _, c := range p.Cookies {
			if strings.HasPrefix(c.Name, "edx-jwt-cookie-") {
				require.Negative(t, c.MaxAge, c.Name)
				cleared++
			}
		}
		require.Equal(t, 2, cleared)
	})
}

func TestStaticAndUnknownPages(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		css := e.get("/static/storefront/storefront.css", "")
		require.Equal(t, http.StatusOK, css.Status)
		require.Contains(t, css.Header.Get("Content-Type"), "text/css")
		p := e.get("/basket/nope/", "ann")
		require.Equal(t, http.StatusNotFound, p.Status)
		require.Contains(t, p.Body, "Page not found")
	})
}
