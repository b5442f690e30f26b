package lmstest

import (
	"bytes"
	"cmp"
	"html/template"
	"net/http"
	"slices"
	"time"
)

// dashboardRow is one enrollment or entitlement on the learner's dashboard.
type dashboardRow struct {
	User, Kind, Course, Name, Mode, State string
	Active                                bool
	Since                                 string
}

type dashboardPage struct {
	User string // "" when showing everyone's
	Rows []dashboardRow
}

var dashboardTmpl = template.Must(template.New("dashboard").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{with .User}}{{.}}'s dashboard{{else}}Dashboard{{end}} · LMS stand-in</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #1d2430; line-height: 1.5; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .5rem .6rem; border-bottom: 1px solid #d9dee5; vertical-align: top; }
th { font-size: .85rem; color: #5b6472; text-transform: uppercase; letter-spacing: .03em; }
.muted { color: #5b6472; }
.active { color: #17663a; font-weight: 600; }
code { font-size: .9em; overflow-wrap: anywhere; }
</style>
</head>
<body>
<main>
<h1>{{with .User}}Courses of {{.}}{{else}}Every learner's courses{{end}}</h1>
<p class="muted">The demo's stand-in for the LMS dashboard: what it holds now, as fulfill enrolled or revoked it.
{{- if .User}} <a href="?">Show every learner</a>.{{else}} Add <code>?user=NAME</code> for one learner.{{end}}</p>
{{if .Rows}}
<table id="enrollments">
  <thead><tr>{{if not .User}}<th scope="col">Learner</th>{{end}}<th scope="col">Course</th><th scope="col">Kind</th><th scope="col">Mode</th><th scope="col">State</th><th scope="col">Since</th></tr></thead>
  <tbody>
  {{range .Rows}}
  <tr data-user="{{.User}}" data-course="{{.Course}}">
    {{if not $.User}}<td><a href="?user={{.User}}">{{.User}}</a></td>{{end}}
    <td>{{with .Name}}{{.}}<br>{{end}}<code>{{.Course}}</code></td>
    <td>{{.Kind}}</td>
    <td>{{.Mode}}</td>
    <td class="{{if .Active}}active{{else}}muted{{end}}">{{.State}}</td>
    <td>{{.Since}}</td>
  </tr>
  {{end}}
  </tbody>
</table>
{{else}}
<p id="no-enrollments">{{with .User}}{{.}} has no enrollment here yet.{{else}}No one has an enrollment here yet.{{end}}</p>
{{end}}
</main>
</body>
</html>
`))

// handleDashboard is GET /dashboard: a plain page of the enrollments and
// entitlements the stand-in holds, of the learner named by ?user= or of
// everyone, so that the receipt's "Go to your dashboard" leads somewhere
// in the demo. The real LMS's dashboard knows the learner from its
// session; the stand-in has none.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	p := dashboardPage{User: r.URL.Query().Get("user")}
	s.mu.Lock()
	for _, e := range s.enrollments {
		if p.User != "" && e.User != p.User {
			continue
		}
		state := "enrolled"
		if !e.IsActive {
			state = "unenrolled"
		}
		p.Rows = append(p.Rows, dashboardRow{User: e.User, Kind: "enrollment", Course: e.CourseDetails.CourseID,
			Name: s.courses[e.CourseDetails.CourseID].Name, Mode: e.Mode, State: state, Active: e.IsActive, Since: since(e.Created)})
	}
	for _, e := range s.ents {
		if p.User != "" && e.User != p.User {
			continue
		}
		state, active := "entitled", e.ExpiredAt == nil
		if !active {
			state = "revoked"
		}
		p.Rows = append(p.Rows, dashboardRow{User: e.User, Kind: "entitlement", Course: e.CourseUUID, Mode: e.Mode, State: state, Active: active})
	}
	s.mu.Unlock()
	slices.SortFunc(p.Rows, func(a, b dashboardRow) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Course, b.Course), cmp.Compare(a.Kind, b.Kind))
	})
	var buf bytes.Buffer
	if err := dashboardTmpl.Execute(&buf, p); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func since(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
