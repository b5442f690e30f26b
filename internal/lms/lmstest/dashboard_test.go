package lmstest_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/lms/lmstest"
)

// TestDashboard: GET /dashboard lists the enrollments the stand-in holds,
// of one learner (?user=) or of everyone, escaped, without an API key.
func TestDashboard(t *testing.T) {
	t.Parallel()
	_, srv := start(t, lmstest.Options{APIKey: key, Seed: 1})
	page := func(query string) answer {
		t.Helper()
		a := do(t, "GET", srv.URL+"/dashboard"+query, "", "")
		require.Equal(t, http.StatusOK, a.status)
		require.Equal(t, "text/html; charset=utf-8", a.header.Get("Content-Type"))
		return a
	}
	require.Contains(t, page("").body, `id="no-enrollments"`)
	require.Contains(t, page("?user=ann").body, "ann has no enrollment here yet")

	require.Equal(t, http.StatusOK, post(t, srv, enrollBody("ann", "audit", course, true)).status)
	require.Equal(t, http.StatusOK, post(t, srv, enrollBody("ann", "verified", other, true)).status)
	require.Equal(t, http.StatusOK, post(t, srv, enrollBody("ann", "verified", other, false)).status)
	require.Equal(t, http.StatusOK, post(t, srv, enrollBody("<b>bob</b>", "audit", course, true)).status)

	ann := html.UnescapeString(page("?user=ann").body)
	require.Equal(t, 2, strings.Count(ann, `<tr data-user="ann"`), ann)
	require.Contains(t, ann, `data-course="`+course+`"`)
	require.Regexp(t, `(?s)data-course="`+regexp.QuoteMeta(other)+`".*?unenrolled`, ann, "a revoked enrollment shows as such")
	require.NotContains(t, ann, "bob")

	all := page("").body
	require.Equal(t, 3, strings.Count(all, "<tr data-user="), all)
	require.Contains(t, all, `href="?user=ann"`)
	require.Contains(t, all, "&lt;b&gt;bob&lt;/b&gt;")
	require.NotContains(t, all, "<b>bob")
	require.Less(t, strings.Index(all, `data-user="&lt;b&gt;bob`), strings.Index(all, `data-user="ann"`), "by learner")
}
