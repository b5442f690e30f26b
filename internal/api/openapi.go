package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// openAPIYAML is the OpenAPI 3.1 document of the whole JSON API, written by
// hand. The API tests keep it true: internal/apptest validates every request
// and response they send and receive against it (internal/api/openapitest).
//
//go:embed openapi.yaml
var openAPIYAML []byte

// Document is the OpenAPI document (YAML) of the JSON API.
func Document() []byte { return slices.Clone(openAPIYAML) }

// openAPI is the document parsed once: as JSON, and as the page /api-docs/
// shows.
var openAPI = sync.OnceValues(func() (parsedDoc, error) {
	var tree any
	if err := yaml.Unmarshal(openAPIYAML, &tree); err != nil {
		return parsedDoc{}, fmt.Errorf("openapi.yaml: %w", err)
	}
	tree = jsonTree(tree)
	raw, err := json.Marshal(tree)
	if err != nil {
		return parsedDoc{}, fmt.Errorf("openapi.yaml as JSON: %w", err)
	}
	root, _ := tree.(map[string]any)
	page, err := renderDocPage(root)
	if err != nil {
		return parsedDoc{}, err
	}
	return parsedDoc{json: raw, page: page}, nil
})

type parsedDoc struct {
	json []byte
	page []byte
}

// jsonTree turns what YAML decodes into what JSON can hold: mapping keys
// that are not strings (status codes written bare) become strings.
func jsonTree(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonTree(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonTree(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonTree(e)
		}
	}
	return v
}

// handleSchema serves the document: JSON (application/vnd.oai.openapi+json)
// unless YAML is asked for, by Accept or ?format=yaml.
func handleSchema() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := openAPI()
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		accept := strings.ToLower(r.Header.Get("Accept"))
		yamlWanted := r.URL.Query().Get("format") == "yaml" || strings.Contains(accept, "yaml") ||
			(strings.Contains(accept, "application/vnd.oai.openapi") && !strings.Contains(accept, "application/vnd.oai.openapi+json"))
		if r.URL.Query().Get("format") == "json" {
			yamlWanted = false
		}
		w.Header().Set("Vary", "Accept")
		if yamlWanted {
			w.Header().Set("Content-Type", "application/vnd.oai.openapi;version=3.1")
			_, _ = w.Write(openAPIYAML)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oai.openapi+json;version=3.1")
		_, _ = w.Write(d.json)
	})
}

// handleAPIDocs serves the document as a page: every operation and schema,
// rendered on the server, with no script and nothing fetched from elsewhere.
func handleAPIDocs() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := openAPI()
		if err != nil {
			writeError(w, r, logFrom(r), err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write(d.page)
	})
}

// addDocRoutes serves the document and its page.
func addDocRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v2/schema/{$}", handleSchema())
	mux.Handle("GET /api-docs/{$}", handleAPIDocs())
}

// The page's model.

type docPage struct {
	Title, Version string
	Description    template.HTML
	Tags           []docTag
	Schemas        []docSchema
	Security       []docSecurity
}

type docTag struct {
	Name        string
	Description template.HTML
	Operations  []docOperation
}

type docOperation struct {
	Method, Path, ID, Summary string
	Description               template.HTML
	Auth                      string
	Params                    []docParam
	Bodies                    []docContent
	Responses                 []docResponse
}

type docParam struct {
	Name, In    string
	Required    bool
	Type        template.HTML
	Description template.HTML
}

type docContent struct {
	MediaType string
	Type      template.HTML
}

type docResponse struct {
	Status      string
	Description template.HTML
	Contents    []docContent
}

type docSchema struct {
	Name        string
	Type        template.HTML
	Description template.HTML
	Properties  []docParam
}

type docSecurity struct {
	Name, Kind  string
	Description template.HTML
}

var docMethods = []string{"get", "put", "post", "patch", "delete"}

// renderDocPage renders the document root as the /api-docs/ page.
func renderDocPage(root map[string]any) ([]byte, error) {
	info := docObj(root["info"])
	p := docPage{Title: docStr(info["title"]), Version: docStr(info["version"]), Description: docMarkdown(docStr(info["description"]))}
	comps := docObj(root["components"])
	byTag := map[string]*docTag{}
	for _, t := range docList(root["tags"]) {
		t := docObj(t)
		p.Tags = append(p.Tags, docTag{Name: docStr(t["name"]), Description: docMarkdown(docStr(t["description"]))})
	}
	for i := range p.Tags {
		byTag[p.Tags[i].Name] = &p.Tags[i]
	}
	globalSecurity := len(docList(root["security"])) > 0
	paths := docObj(root["paths"])
	for _, path := range docKeys(paths) {
		item := docObj(paths[path])
		shared := docList(item["parameters"])
		for _, m := range docMethods {
			op := docObj(item[m])
			if op == nil {
				continue
			}
			o := docOperation{Method: strings.ToUpper(m), Path: path, ID: docStr(op["operationId"]), Summary: docStr(op["summary"]),
				Description: docMarkdown(docStr(op["description"])), Auth: "public"}
			if sec, ok := op["security"]; (ok && len(docList(sec)) > 0) || (!ok && globalSecurity) {
				o.Auth = "JWT"
			}
			for _, pr := range append(slices.Clone(shared), docList(op["parameters"])...) {
				pr := docResolve(comps, docObj(pr))
				o.Params = append(o.Params, docParam{Name: docStr(pr["name"]), In: docStr(pr["in"]), Required: pr["required"] == true,
					Type: docSchemaType(docObj(pr["schema"])), Description: docMarkdown(docStr(pr["description"]))})
			}
			if body := docResolve(comps, docObj(op["requestBody"])); body != nil {
				o.Bodies = docContents(docObj(body["content"]))
			}
			resps := docObj(op["responses"])
			for _, status := range docKeys(resps) {
				rs := docResolve(comps, docObj(resps[status]))
				o.Responses = append(o.Responses, docResponse{Status: status, Description: docMarkdown(docStr(rs["description"])),
					Contents: docContents(docObj(rs["content"]))})
			}
			tag := "other"
			if tags := docList(op["tags"]); len(tags) > 0 {
				tag = docStr(tags[0])
			}
			t, ok := byTag[tag]
			if !ok {
				p.Tags = append(p.Tags, docTag{Name: tag})
				for i := range p.Tags {
					byTag[p.Tags[i].Name] = &p.Tags[i]
				}
				t = byTag[tag]
			}
			t.Operations = append(t.Operations, o)
		}
	}
	schemas := docObj(comps["schemas"])
	for _, name := range docKeys(schemas) {
		s := docObj(schemas[name])
		ds := docSchema{Name: name, Type: docSchemaType(s), Description: docMarkdown(docStr(s["description"]))}
		required := map[string]bool{}
		for _, r := range docList(s["required"]) {
			required[docStr(r)] = true
		}
		props := docObj(s["properties"])
		for _, k := range docKeys(props) {
			ps := docObj(props[k])
			ds.Properties = append(ds.Properties, docParam{Name: k, Required: required[k], Type: docSchemaType(ps),
				Description: docMarkdown(docStr(ps["description"]))})
		}
		p.Schemas = append(p.Schemas, ds)
	}
	secs := docObj(comps["securitySchemes"])
	for _, name := range docKeys(secs) {
		s := docObj(secs[name])
		kind := docStr(s["type"])
		switch kind {
		case "apiKey":
			kind = fmt.Sprintf("%s %s", docStr(s["in"]), docStr(s["name"]))
		case "http":
			kind = "Authorization: " + docStr(s["scheme"])
		}
		p.Security = append(p.Security, docSecurity{Name: name, Kind: kind, Description: docMarkdown(docStr(s["description"]))})
	}
	var b strings.Builder
	if err := docTemplate.Execute(&b, p); err != nil {
		return nil, fmt.Errorf("render /api-docs/: %w", err)
	}
	return []byte(b.String()), nil
}

func docContents(c map[string]any) []docContent {
	var out []docContent
	for _, mt := range docKeys(c) {
		out = append(out, docContent{MediaType: mt, Type: docSchemaType(docObj(docObj(c[mt])["schema"]))})
	}
	return out
}

// resolve follows a local $ref into components.
func docResolve(comps, v map[string]any) map[string]any {
	for range 8 {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v
		}
		parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
		if len(parts) != 2 {
			return v
		}
		v = docObj(docObj(comps[parts[0]])[parts[1]])
	}
	return v
}

// schemaType is a schema in a few words, schema names linked to their
// section.
func docSchemaType(s map[string]any) template.HTML {
	if s == nil {
		return ""
	}
	if ref, ok := s["$ref"].(string); ok {
		name := ref[strings.LastIndex(ref, "/")+1:]
		return template.HTML(`<a href="#schema-` + html.EscapeString(name) + `">` + html.EscapeString(name) + `</a>`)
	}
	joinOf := func(key, sep string) template.HTML {
		var parts []string
		for _, x := range docList(s[key]) {
			parts = append(parts, string(docSchemaType(docObj(x))))
		}
		return template.HTML(strings.Join(parts, sep))
	}
	switch {
	case s["oneOf"] != nil:
		return joinOf("oneOf", " | ")
	case s["anyOf"] != nil:
		return joinOf("anyOf", " | ")
	case s["allOf"] != nil:
		return joinOf("allOf", " &amp; ")
	case s["const"] != nil:
		return template.HTML("<code>" + html.EscapeString(fmt.Sprint(s["const"])) + "</code>")
	case s["enum"] != nil:
		var vs []string
		for _, e := range docList(s["enum"]) {
			vs = append(vs, "<code>"+html.EscapeString(fmt.Sprint(e))+"</code>")
		}
		return template.HTML("one of " + strings.Join(vs, ", "))
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, docStr(x))
		}
	}
	for i, t := range types {
		switch t {
		case "array":
			if items := docObj(s["items"]); items != nil {
				types[i] = "array of " + string(docSchemaType(items))
			}
		case "string":
			if f := docStr(s["format"]); f != "" {
				types[i] = "string (" + html.EscapeString(f) + ")"
			}
		}
	}
	if len(types) == 0 {
		return "any"
	}
	return template.HTML(strings.Join(types, " | "))
}

var docCode = regexp.MustCompile("`([^`]+)`")
var docBold = regexp.MustCompile(`\*\*([^*]+)\*\*`)

// markdown renders the little Markdown the document uses: paragraphs,
// bullet lists, `code` and **bold**.
func docMarkdown(s string) template.HTML {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, para := range strings.Split(s, "\n\n") {
		lines := strings.Split(para, "\n")
		inline := func(t string) string {
			t = html.EscapeString(t)
			t = docCode.ReplaceAllString(t, "<code>$1</code>")
			return docBold.ReplaceAllString(t, "<strong>$1</strong>")
		}
		if strings.HasPrefix(strings.TrimSpace(lines[0]), "* ") {
			b.WriteString("<ul>")
			var item []string
			flush := func() {
				if len(item) > 0 {
					b.WriteString("<li>" + inline(strings.Join(item, " ")) + "</li>")
				}
				item = nil
			}
			for _, l := range lines {
				l = strings.TrimSpace(l)
				if rest, ok := strings.CutPrefix(l, "* "); ok {
					flush()
					l = rest
				}
				item = append(item, l)
			}
			flush()
			b.WriteString("</ul>")
			continue
		}
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		b.WriteString("<p>" + inline(strings.Join(lines, " ")) + "</p>")
	}
	return template.HTML(b.String())
}

func docObj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func docList(v any) []any         { l, _ := v.([]any); return l }
func docStr(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func docKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var docTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} API {{.Version}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:72rem;margin:0 auto;padding:1rem 1.5rem 4rem;color:#1f2328;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.3rem;margin-top:2.5rem;text-transform:capitalize}
code{background:#f3f4f6;padding:0 .25rem;border-radius:.2rem;font-size:.92em}
nav ul{columns:3;list-style:none;padding:0}nav li{margin:.1rem 0;font-size:.9rem}
details{border:1px solid #d0d7de;border-radius:.4rem;margin:.5rem 0;padding:.2rem .8rem}
summary{cursor:pointer;padding:.3rem 0}summary .path{font-family:ui-monospace,monospace;font-weight:600}
.m{display:inline-block;min-width:4.2rem;text-align:center;border-radius:.25rem;color:#fff;font-weight:700;font-size:.8rem;padding:.1rem .3rem;margin-right:.5rem;font-family:ui-monospace,monospace}
.GET{background:#0969da}.POST{background:#1a7f37}.PUT{background:#9a6700}.PATCH{background:#8250df}.DELETE{background:#cf222e}
.auth{float:right;font-size:.8rem;color:#57606a}
table{border-collapse:collapse;width:100%;margin:.4rem 0 .8rem;font-size:.92rem}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td p{margin:0}.req{color:#cf222e;font-size:.8rem}
.schema{border-left:3px solid #d0d7de;padding-left:.8rem;margin:1.2rem 0}
</style></head>
<body>
<h1>{{.Title}} API <small>v{{.Version}}</small></h1>
<p>The OpenAPI 3.1 document: <a href="/api/v2/schema/">/api/v2/schema/</a> (JSON), <a href="/api/v2/schema/?format=yaml">YAML</a>.</p>
{{.Description}}
<nav><ul>{{range .Tags}}<li><a href="#tag-{{.Name}}">{{.Name}}</a> ({{len .Operations}})</li>{{end}}<li><a href="#schemas">schemas</a></li><li><a href="#security">security</a></li></ul></nav>
{{range .Tags}}<h2 id="tag-{{.Name}}">{{.Name}}</h2>{{.Description}}
{{range .Operations}}<details id="op-{{.ID}}"><summary><span class="m {{.Method}}">{{.Method}}</span><span class="path">{{.Path}}</span> — {{.Summary}}<span class="auth">{{.Auth}}</span></summary>
{{.Description}}
{{if .Params}}<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>
{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">required</span>{{end}}</td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Bodies}}<table><tr><th>request body</th><th>schema</th></tr>{{range .Bodies}}<tr><td><code>{{.MediaType}}</code></td><td>{{.Type}}</td></tr>{{end}}</table>{{end}}
<table><tr><th>status</th><th>description</th><th>body</th></tr>
{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td>{{range .Contents}}<code>{{.MediaType}}</code> {{.Type}}<br>{{end}}</td></tr>{{end}}</table>
</details>{{end}}{{end}}
<h2 id="schemas">schemas</h2>
{{range .Schemas}}<div class="schema" id="schema-{{.Name}}"><h3>{{.Name}}</h3>{{.Description}}
{{if .Properties}}<table><tr><th>field</th><th>type</th><th>description</th></tr>
{{range .Properties}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">always</span>{{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>
{{else}}<p>{{.Type}}</p>{{end}}</div>{{end}}
<h2 id="security">security</h2>
<table><tr><th>scheme</th><th>sent as</th><th>description</th></tr>{{range .Security}}<tr><td>{{.Name}}</td><td><code>{{.Kind}}</code></td><td>{{.Description}}</td></tr>{{end}}</table>
</body></html>
`))
