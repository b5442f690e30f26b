package app_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/app"
	"fulfill/internal/apptest"
	"fulfill/internal/config"
	"fulfill/internal/sqlstore"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := noRedirect.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(raw)
}

// TestLanding: "/" of the demo is a page with the demo course's purchase
// links, the learner's dashboard (the LMS stand-in's), the operators'
// dashboard and the API; outside the demo it sends visitors to the LMS;
// without an LMS it stays the API's 404. Only "/" itself is the page.
func TestLanding(t *testing.T) {
	apptest.ForEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := apptest.New(t, engine, apptest.Options{})
		res, body := get(t, e.URL+"/")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
		require.Contains(t, body, `id="no-course"`, "the demo course is not seeded yet")
		require.Contains(t, body, `href="/dashboard/"`)
		require.Contains(t, body, `href="/api/v2/"`)
		require.Contains(t, body, `href="`+e.LMSURL+`/dashboard"`)

		c, err := e.DB.PutCourse(context.Background(), app.DemoCourse())
		require.NoError(t, err)
		_, body = get(t, e.URL+"/")
		body = html.UnescapeString(body)
		require.Contains(t, body, c.Name)
		require.Len(t, c.Seats, 3)
		for _, s := range c.Seats {
			require.Contains(t, body, `<a href="/basket/add/?sku=`+s.SKU+`">`+s.Mode()+`</a>`)
		}
		require.Contains(t, body, "49.00 USD")

		// The learner's dashboard link leads to the stand-in's list.
		e.Buy("ann", http.StatusOK, c.Seats[0].SKU)
		res, body = get(t, e.LMSURL+"/dashboard?user=ann")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, html.UnescapeString(body), `data-course="`+c.ID+`"`)

		// Only "/" itself: other paths and methods are still the API's.
		res, _ = get(t, e.URL+"/nothing-here")
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		e.Do("POST", "/", "", "{}", http.StatusNotFound, nil)
	})
}

func TestLandingOutsideTheDemo(t *testing.T) {
	t.Parallel()
	e := apptest.New(t, sqlstore.SQLite, apptest.Options{Configure: func(cfg *config.Config) { cfg.Demo = false }})
	res, _ := get(t, e.URL+"/")
	require.Equal(t, http.StatusFound, res.StatusCode)
	require.Equal(t, e.LMSURL, res.Header.Get("Location"))

	none := apptest.New(t, sqlstore.SQLite, apptest.Options{Configure: func(cfg *config.Config) {
		cfg.Demo, cfg.LMSURL, cfg.NoLMS = false, "", true
	}})
	res, _ = get(t, none.URL+"/")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
}
