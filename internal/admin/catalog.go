package admin

import (
	"net/http"
	"net/url"

	"fulfill/internal/catalog"
)

type seatView struct {
	catalog.Seat
	BuyURL string
}

type courseView struct {
	catalog.Course
	Seats []seatView
}

type catalogPage struct {
	pageBase
	Courses []courseView
}

// handleCatalog lists the courses with their seats: mode, price, SKU and
// the link a learner follows to buy each.
func handleCatalog(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs, err := a.Store.ListCourses(r.Context())
		if err != nil {
			a.serverError(w, r, "list courses", err)
			return
		}
		p := catalogPage{pageBase: a.base(r, "Catalog", "catalog")}
		for _, c := range cs {
			cv := courseView{Course: c}
			for _, s := range c.Seats {
				cv.Seats = append(cv.Seats, seatView{Seat: s, BuyURL: "/basket/add/?" + url.Values{"sku": {s.SKU}}.Encode()})
			}
			p.Courses = append(p.Courses, cv)
		}
		a.render(w, r, "catalog", &p)
	})
}
