package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Otto's clients send form bodies as often as JSON: requests.post(url,
// data=…) in the LMS and jQuery's $.ajax({data: …}) in Otto's dashboard
// both send application/x-www-form-urlencoded, and DRF parses JSON, form
// and multipart bodies alike. A form body is turned here into the JSON
// its request struct would have been sent as, led by the struct's json
// tags, so that every handler decodes one kind of body:
//
//   - a scalar field takes the last value of its name (DRF's QueryDict);
//   - booleans are true/false (also t/f, yes/no, on/off, 1/0), numbers are
//     parsed, and an empty value leaves a boolean or number unset;
//   - a list is the name repeated (line_ids=1&line_ids=2), or name[] as
//     jQuery sends it, or name[0], name[1];
//   - a nested object is name.field or name[field], and a list of objects
//     name[0][field], name[0].field or DRF's name[0]field.

// isForm reports whether a body of contentType is a form. A body that
// begins like JSON is JSON whatever it is labelled: curl -d sends JSON as
// a form unless told otherwise.
func isForm(contentType string, body []byte) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || (mt != "application/x-www-form-urlencoded" && mt != "multipart/form-data") {
		return false
	}
	b := bytes.TrimSpace(body)
	return len(b) == 0 || (b[0] != '{' && b[0] != '[')
}

// formJSON parses a form body of contentType and returns it as the JSON
// of a value of type t.
func formJSON(contentType string, body []byte, t reflect.Type) ([]byte, error) {
	vals, err := parseForm(contentType, body)
	if err != nil {
		return nil, err
	}
	root := &formNode{}
	for k, vs := range vals {
		for _, s := range append([]string{k}, vs...) {
			if !utf8.ValidString(s) {
				return nil, fmt.Errorf("%w: the form is not valid UTF-8", errBadRequest)
			}
			if strings.ContainsRune(s, 0) {
				return nil, fmt.Errorf("%w: the form holds a NUL character", errBadRequest)
			}
		}
		root.add(splitFormKey(k), vs)
	}
	v, _, err := root.value(t, "")
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = map[string]any{}
	}
	return json.Marshal(v)
}

func parseForm(contentType string, body []byte) (url.Values, error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt != "multipart/form-data" {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("%w: malformed form body", errBadRequest)
		}
		return vals, nil
	}
	if params["boundary"] == "" {
		return nil, fmt.Errorf("%w: multipart/form-data without a boundary", errBadRequest)
	}
	vals := url.Values{}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return vals, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: malformed multipart body", errBadRequest)
		}
		if p.FormName() == "" || p.FileName() != "" {
			continue // no field takes a file
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed multipart body", errBadRequest)
		}
		vals.Add(p.FormName(), string(b))
	}
}

// splitFormKey splits a form name into its path: "a[0][b]", "a[0].b" and
// "a[0]b" are all a, 0, b; "a[]" is a, "". A name with an unclosed bracket
// is one segment.
func splitFormKey(k string) []string {
	i := strings.IndexAny(k, "[.")
	if i <= 0 {
		return []string{k}
	}
	segs := []string{k[:i]}
	for rest := k[i:]; rest != ""; {
		if rest[0] == '[' {
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				return []string{k}
			}
			segs, rest = append(segs, rest[1:j]), rest[j+1:]
			continue
		}
		rest = strings.TrimPrefix(rest, ".")
		j := strings.IndexAny(rest, "[.")
		if j < 0 {
			j = len(rest)
		}
		segs, rest = append(segs, rest[:j]), rest[j:]
	}
	return segs
}

// formNode is one name of a form and the names under it.
type formNode struct {
	vals []string
	kids map[string]*formNode
}

func (n *formNode) add(path []string, vals []string) {
	for _, seg := range path {
		if n.kids == nil {
			n.kids = map[string]*formNode{}
		}
		k := n.kids[seg]
		if k == nil {
			k = &formNode{}
			n.kids[seg] = k
		}
		n = k
	}
	n.vals = append(n.vals, vals...)
}

// indexed returns the kids named by numbers, in their numeric order.
func (n *formNode) indexed() []*formNode {
	type kid struct {
		i int
		n *formNode
	}
	var ks []kid
	for name, k := range n.kids {
		if i, err := strconv.Atoi(name); err == nil && i >= 0 {
			ks = append(ks, kid{i, k})
		}
	}
	slices.SortFunc(ks, func(a, b kid) int { return a.i - b.i })
	out := make([]*formNode, len(ks))
	for i, k := range ks {
		out[i] = k.n
	}
	return out
}

// all is every value given for a list of scalars: the repeated name, then
// name[], then name[0], name[1]….
func (n *formNode) all() []string {
	out := append([]string(nil), n.vals...)
	if k := n.kids[""]; k != nil {
		out = append(out, k.vals...)
	}
	for _, k := range n.indexed() {
		out = append(out, k.vals...)
	}
	return out
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonNumberRE    = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

// value is the JSON value of n for a Go value of type t, and whether the
// form gave one.
func (n *formNode) value(t reflect.Type, path string) (any, bool, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return n.last()
	}
	switch t.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		if err := n.fields(t, path, out); err != nil {
			return nil, false, err
		}
		return out, len(out) > 0 || path == "", nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, false, nil
		}
		out := map[string]any{}
		for name, k := range n.kids {
			v, ok, err := k.value(t.Elem(), join(path, name))
			if err != nil {
				return nil, false, err
			}
			if ok {
				out[name] = v
			}
		}
		return out, len(out) > 0, nil
	case reflect.Slice, reflect.Array:
		et := t.Elem()
		for et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		if et.Kind() == reflect.Struct && !reflect.PointerTo(et).Implements(jsonUnmarshaler) {
			var out []any
			for i, k := range n.indexed() {
				v, _, err := k.value(et, fmt.Sprintf("%s[%d]", path, i))
				if err != nil {
					return nil, false, err
				}
				out = append(out, v)
			}
			return out, out != nil, nil
		}
		var out []any
		for _, s := range n.all() {
			v, ok, err := scalar(et, s, path)
			if err != nil {
				return nil, false, err
			}
			if ok {
				out = append(out, v)
			}
		}
		return out, out != nil, nil
	}
	s, ok, _ := n.last()
	if !ok {
		return nil, false, nil
	}
	return scalar(t, s.(string), path)
}

// fields fills out with the fields of struct type t found under n.
func (n *formNode) fields(t reflect.Type, path string, out map[string]any) error {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if err := n.fields(ft, path, out); err != nil {
					return err
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		k := n.kids[name]
		if k == nil {
			continue
		}
		v, ok, err := k.value(f.Type, join(path, name))
		if err != nil {
			return err
		}
		if ok {
			out[name] = v
		}
	}
	return nil
}

// last is the last value given for a scalar.
func (n *formNode) last() (any, bool, error) {
	if len(n.vals) == 0 {
		return nil, false, nil
	}
	return n.vals[len(n.vals)-1], true, nil
}

// scalar converts one form value for a field of kind t.
func scalar(t reflect.Type, s, path string) (any, bool, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return s, true, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "":
			return nil, false, nil
		case "true", "t", "yes", "y", "on", "1":
			return true, true, nil
		case "false", "f", "no", "n", "off", "0":
			return false, true, nil
		}
		return nil, false, fmt.Errorf("%w: field %q must be true or false, not %q", errBadRequest, path, s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, false, nil
		}
		if _, err := strconv.ParseInt(s, 10, t.Bits()); err != nil {
			return nil, false, fmt.Errorf("%w: field %q must be an integer, not %q", errBadRequest, path, s)
		}
		return json.Number(s), true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, false, nil
		}
		if _, err := strconv.ParseUint(s, 10, t.Bits()); err != nil {
			return nil, false, fmt.Errorf("%w: field %q must be a non-negative integer, not %q", errBadRequest, path, s)
		}
		return json.Number(s), true, nil
	case reflect.Float32, reflect.Float64:
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, false, nil
		}
		if !jsonNumberRE.MatchString(s) {
			return nil, false, fmt.Errorf("%w: field %q must be a number, not %q", errBadRequest, path, s)
		}
		return json.Number(s), true, nil
	case reflect.String, reflect.Interface:
		return s, true, nil
	}
	return nil, false, fmt.Errorf("%w: field %q cannot be given in a form; send JSON", errBadRequest, path)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
