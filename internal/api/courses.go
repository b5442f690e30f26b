package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	Name                   string     `json:"name"`
	CertificateType        string     `json:"certificate_type"`
	IDVerificationRequired bool       `json:"id_verification_required"`
	CreditProvider         string     `json:"credit_provider"`
	Price                  string     `json:"price"`
	Currency               string     `json:"currency"`
	Expires                *time.Time `json:"expires"`
	SKU                    string     `json:"sku"`
	ProductID              int64      `json:"product_id"`
	Title                  string     `json:"title"`
	BulkSKU                string     `json:"bulk_sku,omitempty"`
	PurchaseURL            string     `json:"purchase_url"`
}

type courseView struct {
	ID                   string     `json:"id"`
	Name                 string     `json:"name"`
	VerificationDeadline *time.Time `json:"verification_deadline"`
	Modes                []modeView `json:"modes"`
	CreatedAt            time.Time  `json:"created"`
	UpdatedAt            time.Time  `json:"modified"`
}

func viewCourse(c catalog.Course) courseView {
	v := courseView{ID: c.ID, Name: c.Name, VerificationDeadline: c.VerificationDeadline, Modes: []modeView{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	for _, s := range c.Seats {
		v.Modes = append(v.Modes, modeView{Name: s.Mode(), CertificateType: s.CertificateType, IDVerificationRequired: s.IDVerificationRequired,
			CreditProvider: s.CreditProvider, Price: s.Price.String(), Currency: s.Price.Currency, Expires: s.Expires, SKU: s.SKU,
			ProductID: s.ProductID, Title: s.Title, BulkSKU: s.BulkSKU, PurchaseURL: "/basket/add/?sku=" + url.QueryEscape(s.SKU)})
	}
	return v
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
		writeJSON(w, http.StatusOK, viewCourse(saved))
	})
}

func handleCourseGet(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := store.GetCourse(r.Context(), r.PathValue("course_id"))
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		writeJSON(w, http.StatusOK, viewCourse(c))
	})
}

type stockView struct {
	ID            int64      `json:"id"`
	Partner       string     `json:"partner"`
	PartnerSKU    string     `json:"partner_sku"`
	PriceCurrency string     `json:"price_currency"`
	PriceExclTax  string     `json:"price_excl_tax"`
	Expires       *time.Time `json:"expires"`
}

type catalogProductView struct {
	ID              int64           `json:"id"`
	Title           string          `json:"title"`
	ProductClass    string          `json:"product_class"`
	Structure       string          `json:"structure"`
	CourseID        string          `json:"course_id,omitempty"`
	SKU             string          `json:"sku"`
	Price           string          `json:"price"`
	Currency        string          `json:"currency"`
	Expires         *time.Time      `json:"expires"`
	AttributeValues []attributeView `json:"attribute_values"`
	StockRecords    []stockView     `json:"stockrecords"`
}

func handleProducts(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		skus := r.URL.Query()["sku"]
		if len(skus) == 0 {
			writeError(w, r, logFrom(r), fmt.Errorf("%w: give one or more ?sku= parameters", errBadRequest))
			return
		}
		ps, err := store.ProductsBySKU(r.Context(), skus)
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		results := []catalogProductView{}
		for _, sku := range skus {
			p, ok := ps[sku]
			if !ok {
				continue
			}
			structure := "standalone"
			if p.ParentID != 0 {
				structure = "child"
			}
			st := p.Stock
			results = append(results, catalogProductView{ID: p.ID, Title: p.Title, ProductClass: string(p.Class), Structure: structure,
				CourseID: p.CourseID, SKU: st.SKU, Price: st.Price.String(), Currency: st.Price.Currency, Expires: st.Expires,
				AttributeValues: attributesView(p.Attributes),
				StockRecords: []stockView{{ID: st.ID, Partner: st.Partner, PartnerSKU: st.SKU, PriceCurrency: st.Price.Currency,
					PriceExclTax: st.Price.String(), Expires: st.Expires}}})
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(results), "next": nil, "previous": nil, "results": results})
	})
}
