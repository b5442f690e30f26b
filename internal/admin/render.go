package admin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"fulfill/internal/apperr"
	"fulfill/internal/catalog"
	"fulfill/internal/money"
	"fulfill/internal/order"
)

// parsePages parses each page template with layout.html and partials.html
// into its own set, so that each can define "content".
func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "error", "orders", "order", "refunds", "refund", "catalog", "queue", "payments"} {
		t, err := template.New(name).Funcs(funcs()).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("admin: parse template %s: %w", name, err)
		}
		for _, need := range []string{"layout", "main", "content"} {
			if t.Lookup(need) == nil {
				return nil, fmt.Errorf("admin: template %s defines no %q", name, need)
			}
		}
		out[name] = t
	}
	return out, nil
}

// staticVersion is a hash of the embedded static files, appended to their
// links so that a new binary's files are never hidden by a cached old one.
func staticVersion() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Flash is the result of an action, shown at the top of the next page.
type Flash struct {
	Kind    string // "ok", "error" or "info"
	Message string
	Items   []string `json:",omitempty"`
}

// pageBase is what every page shows in its frame.
type pageBase struct {
	Title   string
	Nav     string // the active navigation item
	User    order.User
	CSRF    string
	Flash   *Flash
	Demo    bool
	Self    string // this page's URL: actions come back to it
	Version string // of the static files
}

func (p *pageBase) common() *pageBase { return p }

type page interface{ common() *pageBase }

func (a *app) base(r *http.Request, title, nav string) pageBase {
	s := sessionFrom(r.Context())
	return pageBase{Title: title, Nav: nav, User: s.User, CSRF: s.CSRF, Demo: a.Demo, Self: r.URL.RequestURI(), Version: a.version()}
}

func (a *app) version() string { return a.staticV }

func (a *app) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	status := http.StatusOK
	if s, ok := r.Context().Value(statusKey).(int); ok {
		status = s
	}
	a.renderStatus(w, r, status, name, p)
}

// renderStatus writes page name with p: the whole page, or for htmx only
// the inside of <main id="content">, which is what htmx swaps.
func (a *app) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	b := p.common()
	if f, ok := r.Context().Value(flashKey).(*Flash); ok {
		b.Flash = f
	} else if !isHTMX(r) {
		b.Flash = a.takeFlash(w, r)
	}
	t := a.pages[name]
	root := "layout"
	if isHTMX(r) {
		root = "main"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, root, p); err != nil {
		a.Log.Error("dashboard: render", "page", name, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	pageBase
	Status  int
	Heading string
	Message string
}

func (a *app) renderError(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	p := errorPage{pageBase: a.base(r, heading, ""), Status: status, Heading: heading, Message: msg}
	a.renderStatus(w, r, status, "error", &p)
}

// serverError logs err with the request id and shows a 500 page that
// names the request, never the error.
func (a *app) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	id := apperr.RequestID(r.Context())
	a.Log.Error("dashboard: "+what, "path", r.URL.Path, "request_id", id, "error", err)
	a.renderError(w, r, http.StatusInternalServerError, "Something went wrong",
		"The dashboard could not "+what+". It has been logged with request id "+id+".")
}

// flashError is the dashboard's one mapping of an error to a message,
// through the vocabulary's table: a domain error shows its own words after
// prefix; an internal one is logged with the request id, which is all the
// message says of it.
func (a *app) flashError(r *http.Request, prefix string, err error) Flash {
	k, internal := apperr.Describe(err)
	if !internal {
		return Flash{Kind: "error", Message: prefix + ": " + apperr.Public(err)}
	}
	id := apperr.RequestID(r.Context())
	a.Log.Error("dashboard: "+prefix, "path", r.URL.Path, "request_id", id, "error", err)
	return Flash{Kind: "error", Message: fmt.Sprintf("%s: %s; it has been logged with request id %s.", prefix, strings.ToLower(k.Flash), id)}
}

const flashCookie = "dashboard_flash"

// setFlash keeps f in a short-lived signed cookie for the page after the
// redirect.
func (a *app) setFlash(w http.ResponseWriter, f Flash) {
	raw, err := json.Marshal(f)
	if err != nil {
		return
	}
	v := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: v + "." + mac(a.keys.flash, v), Path: Prefix, MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// takeFlash reads and clears the flash cookie.
func (a *app) takeFlash(w http.ResponseWriter, r *http.Request) *Flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	v, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(mac(a.keys.flash, v))) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	var f Flash
	if json.Unmarshal(raw, &f) != nil {
		return nil
	}
	return &f
}

// finish ends an action. A plain form post is redirected (303) to back
// with f as a flash message; an htmx request, or a refused one (status
// 4xx), gets the page at back rendered at once with f on top, so that htmx
// swaps it in place of the page's content without a reload.
func (a *app) finish(w http.ResponseWriter, r *http.Request, status int, f Flash, back string) {
	back = localPath(back, Prefix)
	if !isHTMX(r) && status < 400 {
		a.setFlash(w, f)
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	u, err := url.Parse(back)
	if err != nil {
		u = &url.URL{Path: Prefix}
	}
	ctx := context.WithValue(context.WithValue(r.Context(), flashKey, &f), statusKey, status)
	g := r.Clone(ctx)
	g.Method, g.URL, g.RequestURI = http.MethodGet, u, u.RequestURI()
	g.Body, g.ContentLength, g.Form, g.PostForm = http.NoBody, 0, nil, nil
	g.Header.Del("Content-Type")
	a.mux.ServeHTTP(w, g)
}

// back is where an action returns: the form's "back" field when it is a
// dashboard page, else def.
func back(r *http.Request, def string) string { return localPath(r.PostFormValue("back"), def) }

func orderURL(number string) string { return Prefix + "orders/" + url.PathEscape(number) + "/" }

// timeView is a timestamp as the page shows it: UTC text that the page's
// script rewrites in the viewer's time zone, the exact UTC time on hover.
type timeView struct {
	ISO, Exact, Text string
	Seconds          string // Text with the seconds, for attempts and notes
}

func ts(v any) *timeView {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return nil
		}
		t = *x
	default:
		return nil
	}
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &timeView{ISO: t.Format(time.RFC3339Nano), Exact: t.Format("2006-01-02 15:04:05.000000 UTC"), Text: t.Format("2006-01-02 15:04 UTC"),
		Seconds: t.Format("2006-01-02 15:04:05 UTC")}
}

// statusClass maps a status of an order, line or refund to its colour.
func statusClass(s any) string {
	switch v := fmt.Sprint(s); {
	case v == "Complete" || v == "Payment Refunded" || v == "success" || v == "Paid":
		return "st-ok"
	case v == "Open" || v == "Pending":
		return "st-wait"
	case v == "Denied" || v == "Refunded":
		return "st-muted"
	case v == "":
		return "st-none"
	default: // the error statuses and failure classes
		return "st-bad"
	}
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"ts":          ts,
		"statusClass": statusClass,
		"money": func(minor int64, cur string) string {
			return money.Format(minor, cur) + " " + cur
		},
		"mode": func(a catalog.Attributes) string {
			if a.String("course_key") == "" && a.String("certificate_type") == "" {
				return ""
			}
			return catalog.SeatMode(a)
		},
		"course": func(a catalog.Attributes) string { return a.String("course_key") },
		"truncate": func(s string, n int) string {
			if r := []rune(s); len(r) > n {
				return string(r[:n-1]) + "…"
			}
			return s
		},
		"dur": func(d time.Duration) string {
			switch {
			case d <= 0:
				return "0s"
			case d < time.Millisecond:
				return d.Round(time.Microsecond).String()
			case d < time.Second:
				return d.Round(time.Millisecond).String()
			case d < time.Hour:
				return d.Round(time.Second).String()
			}
			return d.Round(time.Minute).String()
		},
		"orderURL":    orderURL,
		"pathEscape":  url.PathEscape,
		"queryEscape": url.QueryEscape,
	}
}
