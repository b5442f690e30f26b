package app

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"fulfill/internal/catalog"
	"fulfill/internal/config"
	"fulfill/internal/money"
)

// courseReader is what the landing page reads: the demo course, or the
// first few courses when it is not seeded.
type courseReader interface {
	GetCourse(ctx context.Context, id string) (catalog.Course, error)
	ListCourses(ctx context.Context) ([]catalog.Course, error)
}

// landingCourses bounds the courses the landing page lists when the demo
// course is not seeded.
const landingCourses = 5

type landingSeat struct{ Mode, Price, URL string }

type landingCourse struct {
	ID, Name string
	Seats    []landingSeat
}

type landingPage struct {
	Courses      []landingCourse
	DashboardURL string // the learner's LMS dashboard
}

var landingTmpl = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fulfill demo</title>
<link rel="stylesheet" href="/static/storefront/storefront.css">
</head>
<body>
<main id="main" class="wrap">
<h1>fulfill demo</h1>
<p class="lead">Orders and fulfillment for Open edX, running in demo mode: the sandbox takes no real money and an LMS stand-in enrolls the learners.</p>
<h2>Buy a course</h2>
{{range .Courses}}
<section class="checkout" data-course="{{.ID}}">
  <h3>{{.Name}}</h3>
  <ul>
    {{range .Seats}}<li><a href="{{.URL}}">{{.Mode}}</a> · {{.Price}}</li>{{end}}
  </ul>
</section>
{{else}}
<p id="no-course">No course is on sale yet: <code>fulfill serve --demo</code> seeds one, or put one with <code>PUT /api/v2/courses/{id}/</code>.</p>
{{end}}
<h2>Look around</h2>
<ul id="links">
  <li><a href="{{.DashboardURL}}">The learner's dashboard</a> (the LMS stand-in's list of enrollments)</li>
  <li><a href="/dashboard/">The operators' dashboard</a> (orders, retries, refunds; sign in as demo staff)</li>
  <li><a href="/api/v2/">The JSON API</a> under <code>/api/v2/</code></li>
</ul>
</main>
</body>
</html>
`))

// landing is the service's "/": in demo mode a small page with the demo
// course's purchase links, the learner's and the operators' dashboards and
// the API; outside it, a redirect to the LMS, where learners start. With
// neither (no LMS URL) it is nil, and "/" stays the API's problem+json 404.
func landing(cfg *config.Config, log *slog.Logger, courses courseReader) http.Handler {
	lms := strings.TrimRight(cfg.LMSURL, "/")
	if !cfg.Demo {
		if lms == "" {
			return nil
		}
		return http.RedirectHandler(cfg.LMSURL, http.StatusFound)
	}
	dashboard := cfg.LMSDashboardURL
	if dashboard == "" {
		dashboard = lms + "/dashboard"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := landingPage{DashboardURL: dashboard}
		list, err := demoCourses(r.Context(), courses)
		if err != nil {
			log.Error("landing page: read courses", "error", err)
		}
		for _, c := range list {
			lc := landingCourse{ID: c.ID, Name: c.Name}
			for _, s := range c.Seats {
				lc.Seats = append(lc.Seats, landingSeat{Mode: s.Mode(), Price: money.Format(s.Price.Minor, s.Price.Currency) + " " + s.Price.Currency,
					URL: "/basket/add/?sku=" + s.SKU})
			}
			p.Courses = append(p.Courses, lc)
		}
		var buf bytes.Buffer
		if err := landingTmpl.Execute(&buf, p); err != nil {
			log.Error("landing page: render", "error", err)
			http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'")
		_, _ = w.Write(buf.Bytes())
	})
}

// demoCourses is the demo course, or when it is not seeded the first few
// courses on sale.
func demoCourses(ctx context.Context, courses courseReader) ([]catalog.Course, error) {
	c, err := courses.GetCourse(ctx, DemoCourse().ID)
	if err == nil {
		return []catalog.Course{c}, nil
	}
	if !errors.Is(err, catalog.ErrNotFound) {
		return nil, err
	}
	all, err := courses.ListCourses(ctx)
	if len(all) > landingCourses {
		all = all[:landingCourses]
	}
	return all, err
}
