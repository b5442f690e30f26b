package storefront_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/sqlstore"
)

// The marketing site's links (M1) carry utm_* campaign parameters: they
// stay on the redirect to the basket page, and the page still works.
func TestBasketAddKeepsUTMParameters(t *testing.T) {
	forEngines(t, func(t *testing.T, engine sqlstore.Engine) {
		e := newEnv(t, engine, envOpts{})
		id, p := e.add("ann", url.Values{"sku": {e.skus["verified"]}, "utm_source": {"edx.org"}, "utm_campaign": {"spring", "sale"},
			"code": {"SAVE10"}}.Encode())
		u, err := url.Parse(p.Location)
		require.NoError(t, err)
		q := u.Query()
		require.Equal(t, "edx.org", q.Get("utm_source"))
		require.Equal(t, []string{"spring", "sale"}, q["utm_campaign"])
		require.Equal(t, "SAVE10", q.Get("code"))
		require.NotZero(t, id)
		require.Equal(t, http.StatusOK, e.get(p.Location, "ann").Status)
		// Nothing else of the link is carried.
		_, p = e.add("bob", url.Values{"sku": {e.skus["verified"]}, "next": {"https://evil.example/"}}.Encode())
		u, err = url.Parse(p.Location)
		require.NoError(t, err)
		require.NotContains(t, u.Query(), "next")
	})
}
