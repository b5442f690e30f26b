package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/money"
)

type modeIn struct {
	CertificateType        string     `json:"certificate_type"`
	IDVerificationRequired bool       `json:"id_verification_required"`
	CreditProvider         string     `json:"credit_provider"`
	Price                  *decimal   `json:"price"`
	Currency               string     `json:"currency"`
	Expires                *time.Time `json:"expires"`
	SKU                    string     `json:"sku"`
}

type courseIn struct {
	Name                 string     `json:"name"`
	VerificationDeadline *time.Time `json:"verification_deadline"`
	Modes                []modeIn   `json:"modes"`
}

type modeView struct {
	Name                   string   `json:"name"`
	CertificateType        string   `json:"certificate_type"`
	IDVerificationRequired bool     `json:"id_verification_required"`
	CreditProvider         string   `json:"credit_provider"`
	Price                  string   `json:"price"`
	Currency               string   `json:"currency"`
	Expires                *apiTime `json:"expires"`
	SKU                    string   `json:"sku"`
	ProductID              int64    `json:"product_id"`
	Title                  string   `json:"title"`
	BulkSKU                string   `json:"bulk_sku,omitempty"`
	PurchaseURL            string   `json:"purchase_url"`
}

// courseView is a course with its modes, and the fields of Otto's
// CourseSerializer; products only when asked for (include_products).
type courseView struct {
	ID                          string         `json:"id"`
	URL                         string         `json:"url"`
	Name                        string         `json:"name"`
	VerificationDeadline        *apiTime       `json:"verification_deadline"`
	Type                        string         `json:"type"`
	LastEdited                  apiTime        `json:"last_edited"`
	HasActiveBulkEnrollmentCode bool           `json:"has_active_bulk_enrollment_code"`
	Products                    *[]productView `json:"products,omitempty"`
	Modes                       []modeView     `json:"modes"`
	CreatedAt                   apiTime        `json:"created"`
	UpdatedAt                   apiTime        `json:"modified"`
}

// courseType is Otto's Course.type: the most demanding of its seats.
func courseType(c catalog.Course) string {
	rank := map[string]int{catalog.CertHonor: 1, catalog.CertVerified: 2, catalog.CertProfessional: 3, catalog.CertCredit: 4}
	t := "audit"
	for _, s := range c.Seats {
		if rank[s.CertificateType] > rank[t] {
			t = s.CertificateType
		}
	}
	return t
}

func viewCourse(c catalog.Course, vw viewer) courseView {
	v := courseView{ID: c.ID, URL: vw.base + "/api/v2/courses/" + url.PathEscape(c.ID) + "/", Name: c.Name,
		VerificationDeadline: apiTimePtr(c.VerificationDeadline), Type: courseType(c), LastEdited: apiTime(c.UpdatedAt),
		Modes: []modeView{}, CreatedAt: apiTime(c.CreatedAt), UpdatedAt: apiTime(c.UpdatedAt)}
	for _, s := range c.Seats {
		v.HasActiveBulkEnrollmentCode = v.HasActiveBulkEnrollmentCode || s.BulkSKU != ""
		v.Modes = append(v.Modes, modeView{Name: s.Mode(), CertificateType: s.CertificateType, IDVerificationRequired: s.IDVerificationRequired,
			CreditProvider: s.CreditProvider, Price: s.Price.String(), Currency: s.Price.Currency, Expires: apiTimePtr(s.Expires), SKU: s.SKU,
			ProductID: s.ProductID, Title: s.Title, BulkSKU: s.BulkSKU, PurchaseURL: "/basket/add/?sku=" + url.QueryEscape(s.SKU)})
	}
	return v
}

// withProducts adds every product of each course (parent seat, seats,
// enrollment codes), as include_products asks.
func withProducts(ctx context.Context, d Deps, vw viewer, cs []catalog.Course, views []courseView) error {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	ps, err := d.Store.CourseProducts(ctx, ids)
	if err != nil {
		return err
	}
	for i := range views {
		list := []productView{}
		for _, p := range ps[cs[i].ID] {
			list = append(list, vw.product(p))
		}
		views[i].Products = &list
	}
	return nil
}

// truthy reads a query flag as DRF's BooleanField does.
func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "true", "t", "yes", "y", "on", "1":
		return true
	}
	return false
}

func handleCoursePut(d Deps) http.Handler {
	store := d.Store
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		var in courseIn
		if err := decode(r, &in); err != nil {
			writeError(w, r, log, err)
			return
		}
		c := catalog.Course{ID: r.PathValue("course_id"), Name: in.Name, VerificationDeadline: in.VerificationDeadline}
		for i, m := range in.Modes {
			if m.Price == nil {
				writeError(w, r, log, fmt.Errorf("%w: modes[%d].price is required", errBadRequest, i))
				return
			}
			cur := m.Currency
			if cur == "" {
				cur = "USD"
			}
			p, err := money.Parse(string(*m.Price), cur)
			if err != nil {
				writeError(w, r, log, fmt.Errorf("modes[%d]: %w", i, err))
				return
			}
			c.Seats = append(c.Seats, catalog.Seat{CertificateType: m.CertificateType, IDVerificationRequired: m.IDVerificationRequired,
				CreditProvider: m.CreditProvider, Price: p, Expires: m.Expires, SKU: m.SKU})
		}
		saved, err := store.PutCourse(r.Context(), c)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if d.Publisher != nil {
			if err := d.Publisher.Publish(r.Context(), saved); err != nil {
				// The course is saved; the LMS just does not know it yet.
				msg := "the LMS did not take it"
				var pe *catalog.PublishError
				if errors.As(err, &pe) {
					msg = pe.Message
					log.Error("publish course to the LMS", "course", saved.ID, "error", pe.Cause)
				} else {
					log.Error("publish course to the LMS", "course", saved.ID, "error", err)
				}
				writeProblem(w, r, Problem{Status: http.StatusBadGateway, Title: "Saved, but not published to the LMS",
					Detail: fmt.Sprintf("Course %s was saved, but the LMS refused its modes: %s. Publish it again with `fulfill courses publish %s`.", saved.ID, msg, saved.ID),
					Errors: map[string]any{"lms": msg}})
				return
			}
		}
		writeJSON(w, http.StatusOK, viewCourse(saved, newViewer(d, r)))
	})
}

// handleCourseGet is one course with its modes; with
// ?include_products=true its products too, as Otto's course detail.
func handleCourseGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := d.Store.GetCourse(r.Context(), r.PathValue("course_id"))
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		vw := newViewer(d, r)
		views := []courseView{viewCourse(c, vw)}
		if truthy(r.URL.Query().Get("include_products")) {
			if err := withProducts(r.Context(), d, vw, []catalog.Course{c}, views); err != nil {
				writeError(w, r, logFrom(r), err)
				return
			}
		}
		writeJSON(w, http.StatusOK, views[0])
	})
}

// handleCourseList is Otto's course list, a page-number page by course id;
// course-discovery reads it with include_products=true.
func handleCourseList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var cs []catalog.Course
		page, size, count, err := fetchPage(q, func(offset, limit int) (n int, err error) {
			cs, n, err = d.Store.ListCoursesPage(r.Context(), offset, limit)
			return n, err
		})
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		vw := newViewer(d, r)
		results := make([]courseView, 0, len(cs))
		for _, c := range cs {
			results = append(results, viewCourse(c, vw))
		}
		if truthy(q.Get("include_products")) {
			if err := withProducts(r.Context(), d, vw, cs, results); err != nil {
				writeError(w, r, logFrom(r), err)
				return
			}
		}
		next, previous := pageLinks(d, r, page, size, count)
		writeJSON(w, http.StatusOK, map[string]any{"count": count, "next": next, "previous": previous, "results": results})
	})
}

// handleProducts lists products by SKU (?sku=, repeated: every one found,
// on one page) or by class (?product_class=, page-number pages by id, as
// course-discovery reads entitlements).
func handleProducts(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		skus, class := q["sku"], catalog.Class(q.Get("product_class"))
		vw := newViewer(d, r)
		if len(skus) == 0 {
			if class == "" {
				writeError(w, r, logFrom(r), fmt.Errorf("%w: give one or more ?sku= parameters, or ?product_class=", errBadRequest))
				return
			}
			var ps []catalog.Product
			page, size, count, err := fetchPage(q, func(offset, limit int) (n int, err error) {
				ps, n, err = d.Store.ListProducts(r.Context(), class, offset, limit)
				return n, err
			})
			if err != nil {
				writeError(w, r, logFrom(r), err)
				return
			}
			results := make([]productView, 0, len(ps))
			for _, p := range ps {
				results = append(results, vw.product(p))
			}
			next, previous := pageLinks(d, r, page, size, count)
			writeJSON(w, http.StatusOK, map[string]any{"count": count, "next": next, "previous": previous, "results": results})
			return
		}
		ps, err := d.Store.ProductsBySKU(r.Context(), skus)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		results := []productView{}
		for _, sku := range skus {
			p, ok := ps[sku]
			if !ok || (class != "" && p.Class != class) {
				continue
			}
			results = append(results, vw.product(p))
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(results), "next": nil, "previous": nil, "results": results})
	})
}

// handleProductGet is one product by id, the url every product view
// carries.
func handleProductGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, logFrom(r), fmt.Errorf("product %q: %w", r.PathValue("id"), catalog.ErrNotFound))
			return
		}
		p, err := d.Store.ProductByID(r.Context(), id)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeJSON(w, http.StatusOK, newViewer(d, r).product(p))
	})
}
