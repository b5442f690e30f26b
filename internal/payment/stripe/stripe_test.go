package stripe

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"fulfill/internal/money"
	"fulfill/internal/payment"
)

const (
	testKey    = "sk_test_123"
	testSecret = "whsec_test_secret"
)

// stripe-mock (github.com/stripe/stripe-mock, a tool dependency in go.mod)
// is built and started at most once per package run, by the first test that
// needs it, and stopped by TestMain.
var mock struct {
	once sync.Once
	url  string
	skip string // set when it cannot be built for a reason outside the project
	err  error
	cmd  *exec.Cmd
	dir  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if mock.cmd != nil && mock.cmd.Process != nil {
		_ = mock.cmd.Process.Kill()
		_ = mock.cmd.Wait()
	}
	if mock.dir != "" {
		_ = os.RemoveAll(mock.dir)
	}
	os.Exit(code)
}

// stripeMock returns the base URL of a running stripe-mock.
func stripeMock(t *testing.T) string {
	t.Helper()
	mock.once.Do(startStripeMock)
	if mock.skip != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("stripe-mock is required in CI: %s", mock.skip)
		}
		t.Skip(mock.skip)
	}
	if mock.err != nil {
		t.Fatal(mock.err)
	}
	return mock.url
}

// offline reports whether go's output says the module proxy could not be
// reached, which is the environment's fault, not the project's.
func offline(out string) bool {
	for _, s := range []string{"dial tcp", "no such host", "Could not resolve host", "i/o timeout",
		"connection refused", "network is unreachable", "proxyconnect", "TLS handshake timeout", "GOPROXY=off", "-mod=vendor"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

func startStripeMock() {
	gobin, err := exec.LookPath("go")
	if err != nil {
		mock.skip = "go command not found: " + err.Error()
		return
	}
	mock.dir, err = os.MkdirTemp("", "stripe-mock-")
	if err != nil {
		mock.err = err
		return
	}
	bin := filepath.Join(mock.dir, "stripe-mock")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/stripe/stripe-mock")
	if out, err := build.CombinedOutput(); err != nil {
		msg := fmt.Sprintf("building stripe-mock: %v\n%s", err, out)
		if offline(string(out)) {
			mock.skip = msg
		} else {
			mock.err = errors.New(msg)
		}
		return
	}

	// Both listeners on loopback, ports chosen by the system; stripe-mock
	// prints the HTTP address once it is listening.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		mock.err = err
		return
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		mock.err = fmt.Errorf("starting stripe-mock: %v", err)
		return
	}
	mock.cmd = cmd
	addr := make(chan string, 1)
	go func() {
		const prefix = "Listening for HTTP at address: "
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
		close(addr)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			mock.err = fmt.Errorf("stripe-mock exited before listening: %s", stderr.String())
			return
		}
		mock.url = "http://" + a
	case <-time.After(30 * time.Second):
		mock.err = fmt.Errorf("stripe-mock did not start listening within 30s: %s", stderr.String())
		return
	}

	// Wait until it answers an authenticated request.
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, mock.url+"/v1/payment_intents/pi_123", nil)
		req.SetBasicAuth(testKey, "")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			mock.err = fmt.Errorf("stripe-mock at %s does not answer: %v", mock.url, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newProcessor(t *testing.T, backendURL string, mod ...func(*Config)) *Processor {
	t.Helper()
	cfg := Config{SecretKey: testKey, WebhookSecret: testSecret, BackendURL: backendURL}
	for _, f := range mod {
		f(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var basket = payment.Basket{ID: 12, Username: "alice", Email: "alice@example.com", Total: money.Amount{Minor: 4900, Currency: "USD"}}

func TestNew(t *testing.T) {
	if _, err := New(Config{WebhookSecret: testSecret}); err == nil {
		t.Error("New without a secret key: no error")
	}
	if _, err := New(Config{SecretKey: testKey}); err == nil {
		t.Error("New without a webhook secret: no error")
	}
	p := newProcessor(t, "")
	if p.Name() != "stripe" {
		t.Errorf("Name() = %q", p.Name())
	}
}

func TestPaymentDataStripeMock(t *testing.T) {
	base := stripeMock(t)
	ctx := context.Background()

	p := newProcessor(t, base)
	d, err := p.PaymentData(ctx, basket, "https://shop.example")
	if err != nil {
		t.Fatal(err)
	}
	if d.ProcessorName != "stripe" {
		t.Errorf("ProcessorName = %q", d.ProcessorName)
	}
	if id := d.FormData["payment_intent_id"]; !strings.HasPrefix(id, "pi_") {
		t.Errorf("payment_intent_id = %q", id)
	}
	if d.FormData["client_secret"] == "" {
		t.Error("no client_secret")
	}
	if _, ok := d.FormData["publishable_key"]; ok {
		t.Error("publishable_key present though not configured")
	}
	if want := "https://shop.example/payment/stripe/pay/?basket_id=12"; d.PageURL != want {
		t.Errorf("PageURL = %q, want %q", d.PageURL, want)
	}

	p = newProcessor(t, base, func(c *Config) { c.PublishableKey = "pk_test_123" })
	d, err = p.PaymentData(ctx, basket, "https://shop.example/")
	if err != nil {
		t.Fatal(err)
	}
	if d.FormData["publishable_key"] != "pk_test_123" {
		t.Errorf("publishable_key = %q", d.FormData["publishable_key"])
	}
	if want := "https://shop.example/payment/stripe/pay/?basket_id=12"; d.PageURL != want {
		t.Errorf("PageURL = %q, want %q", d.PageURL, want)
	}
}

func TestIssueCreditStripeMock(t *testing.T) {
	p := newProcessor(t, stripeMock(t))
	id, err := p.IssueCredit(context.Background(), "100012", "pi_123", money.Amount{Minor: 1500, Currency: "USD"}, "refund-7")
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("empty refund id")
	}
}

// recorder is a fake Stripe API that records the one request it gets and
// answers with status and body.
type recorder struct {
	mu     sync.Mutex
	path   string
	header http.Header
	form   url.Values
}

func (r *recorder) server(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_ = req.ParseForm()
		r.mu.Lock()
		r.path, r.header, r.form = req.URL.Path, req.Header.Clone(), req.PostForm
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_test")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (r *recorder) check(t *testing.T, path string, header map[string]string, form map[string]string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path != path {
		t.Errorf("request path = %q, want %q", r.path, path)
	}
	for k, v := range header {
		if got := r.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	for k, v := range form {
		if got := r.form.Get(k); got != v {
			t.Errorf("form %s = %q, want %q (form %v)", k, got, v, r.form)
		}
	}
}

func TestPaymentDataRequest(t *testing.T) {
	var rec recorder
	srv := rec.server(t, http.StatusOK, `{"id":"pi_abc","object":"payment_intent","client_secret":"pi_abc_secret_x","amount":4900,"currency":"usd"}`)
	p := newProcessor(t, srv.URL)
	d, err := p.PaymentData(context.Background(), basket, "https://shop.example")
	if err != nil {
		t.Fatal(err)
	}
	if d.FormData["payment_intent_id"] != "pi_abc" || d.FormData["client_secret"] != "pi_abc_secret_x" {
		t.Errorf("FormData = %v", d.FormData)
	}
	rec.check(t, "/v1/payment_intents",
		map[string]string{"Authorization": "Bearer " + testKey, "Idempotency-Key": "basket-12-4900USD"}, // repriced: another key
		map[string]string{
			"amount":                             "4900",
			"currency":                           "usd",
			"metadata[basket_id]":                "12",
			"metadata[username]":                 "alice",
			"automatic_payment_methods[enabled]": "true",
		})
}

func TestPaymentDataInvalidBasket(t *testing.T) {
	p := newProcessor(t, "http://127.0.0.1:1") // never called
	for _, b := range []payment.Basket{
		{ID: 0, Total: money.Amount{Minor: 100, Currency: "USD"}},
		{ID: 1, Total: money.Amount{Minor: 0, Currency: "USD"}},
		{ID: 1, Total: money.Amount{Minor: 100, Currency: "usd"}},
	} {
		if _, err := p.PaymentData(context.Background(), b, ""); err == nil {
			t.Errorf("PaymentData(%+v): no error", b)
		}
	}
}

func TestIssueCreditRequest(t *testing.T) {
	var rec recorder
	srv := rec.server(t, http.StatusOK, `{"id":"re_abc","object":"refund","amount":1500,"currency":"usd","status":"succeeded"}`)
	p := newProcessor(t, srv.URL)
	id, err := p.IssueCredit(context.Background(), "100012", "pi_abc", money.Amount{Minor: 1500, Currency: "USD"}, "refund-7")
	if err != nil {
		t.Fatal(err)
	}
	if id != "re_abc" {
		t.Errorf("refund id = %q", id)
	}
	rec.check(t, "/v1/refunds",
		map[string]string{"Authorization": "Bearer " + testKey, "Idempotency-Key": "refund-7"},
		map[string]string{"payment_intent": "pi_abc", "amount": "1500", "metadata[order_number]": "100012"})
}

func TestIssueCreditAPIError(t *testing.T) {
	var rec recorder
	srv := rec.server(t, http.StatusPaymentRequired,
		`{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}`)
	p := newProcessor(t, srv.URL)
	_, err := p.IssueCredit(context.Background(), "100012", "pi_abc", money.Amount{Minor: 1500, Currency: "USD"}, "refund-8")
	if !errors.Is(err, payment.ErrCredit) {
		t.Fatalf("err = %v, want payment.ErrCredit", err)
	}
	if !strings.Contains(err.Error(), "Your card was declined.") {
		t.Errorf("err = %q lacks Stripe's message", err)
	}
	var se *stripego.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusPaymentRequired || se.Type != stripego.ErrorTypeCard {
		t.Errorf("err = %v does not carry the *stripe.Error", err)
	}
}

func TestIssueCreditInvalid(t *testing.T) {
	p := newProcessor(t, "http://127.0.0.1:1") // never called
	ctx := context.Background()
	if _, err := p.IssueCredit(ctx, "1", "pi_abc", money.Amount{Minor: 0, Currency: "USD"}, "k"); !errors.Is(err, payment.ErrCredit) {
		t.Errorf("zero amount: err = %v", err)
	}
	if _, err := p.IssueCredit(ctx, "1", "", money.Amount{Minor: 100, Currency: "USD"}, "k"); !errors.Is(err, payment.ErrCredit) {
		t.Errorf("no reference: err = %v", err)
	}
}

// event builds a webhook event body around a payment intent.
func event(t *testing.T, typ string, metadata map[string]string, received int64) []byte {
	t.Helper()
	pi := map[string]any{
		"id":              "pi_3Abc",
		"object":          "payment_intent",
		"amount":          4900,
		"amount_received": received,
		"currency":        "usd",
		"status":          "succeeded",
	}
	if metadata != nil {
		pi["metadata"] = metadata
	}
	body, err := json.Marshal(map[string]any{
		"id":          "evt_1",
		"object":      "event",
		"type":        typ,
		"api_version": "2020-08-27",
		"created":     time.Now().Unix(),
		"data":        map[string]any{"object": pi},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func signed(body []byte, secret string, at time.Time) http.Header {
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at})
	h := http.Header{}
	h.Set("Stripe-Signature", sp.Header)
	return h
}

func TestParseNotification(t *testing.T) {
	p := newProcessor(t, "http://127.0.0.1:1") // never called
	ctx := context.Background()
	meta := map[string]string{"basket_id": "12", "username": "alice"}
	usd4900 := money.Amount{Minor: 4900, Currency: "USD"}

	t.Run("succeeded", func(t *testing.T) {
		body := event(t, "payment_intent.succeeded", meta, 4900)
		n, err := p.ParseNotification(ctx, signed(body, testSecret, time.Now()), body)
		if err != nil {
			t.Fatal(err)
		}
		want := payment.Notification{Processor: "stripe", Reference: "pi_3Abc", BasketID: 12, Amount: usd4900, Decision: payment.Accept, Raw: body}
		if n.Processor != want.Processor || n.Reference != want.Reference || n.BasketID != want.BasketID ||
			n.Amount != want.Amount || n.Decision != want.Decision || string(n.Raw) != string(body) {
			t.Errorf("got %+v, want %+v", n, want)
		}
		if n.Amount.String() != "49.00" {
			t.Errorf("amount = %s", n.Amount)
		}
	})
	t.Run("payment_failed", func(t *testing.T) {
		body := event(t, "payment_intent.payment_failed", meta, 0)
		n, err := p.ParseNotification(ctx, signed(body, testSecret, time.Now()), body)
		if err != nil {
			t.Fatal(err)
		}
		if n.Decision != payment.Decline || n.BasketID != 12 || n.Amount != usd4900 || n.Reference != "pi_3Abc" {
			t.Errorf("got %+v", n)
		}
	})
	t.Run("amount_received wins", func(t *testing.T) {
		body := event(t, "payment_intent.succeeded", meta, 4500)
		n, err := p.ParseNotification(ctx, signed(body, testSecret, time.Now()), body)
		if err != nil {
			t.Fatal(err)
		}
		if n.Amount != (money.Amount{Minor: 4500, Currency: "USD"}) {
			t.Errorf("amount = %+v, want the 45.00 USD received", n.Amount)
		}
	})
	t.Run("other type", func(t *testing.T) {
		body := event(t, "payment_intent.created", meta, 0)
		if _, err := p.ParseNotification(ctx, signed(body, testSecret, time.Now()), body); !errors.Is(err, payment.ErrIgnored) {
			t.Errorf("err = %v, want ErrIgnored", err)
		}
	})

	bad := map[string]func() (http.Header, []byte){
		"wrong secret": func() (http.Header, []byte) {
			body := event(t, "payment_intent.succeeded", meta, 4900)
			return signed(body, "whsec_other", time.Now()), body
		},
		"tampered body": func() (http.Header, []byte) {
			body := event(t, "payment_intent.succeeded", meta, 4900)
			h := signed(body, testSecret, time.Now())
			return h, []byte(strings.Replace(string(body), "4900", "9900", 1))
		},
		"missing header": func() (http.Header, []byte) {
			return http.Header{}, event(t, "payment_intent.succeeded", meta, 4900)
		},
		"garbled header": func() (http.Header, []byte) {
			h := http.Header{}
			h.Set("Stripe-Signature", "nonsense")
			return h, event(t, "payment_intent.succeeded", meta, 4900)
		},
		"too old": func() (http.Header, []byte) {
			body := event(t, "payment_intent.succeeded", meta, 4900)
			return signed(body, testSecret, time.Now().Add(-10*time.Minute)), body
		},
	}
	for name, mk := range bad {
		t.Run(name, func(t *testing.T) {
			h, body := mk()
			if _, err := p.ParseNotification(ctx, h, body); !errors.Is(err, payment.ErrBadSignature) {
				t.Errorf("err = %v, want ErrBadSignature", err)
			}
		})
	}

	invalid := map[string][]byte{
		"missing metadata":   event(t, "payment_intent.succeeded", nil, 4900),
		"no basket_id":       event(t, "payment_intent.succeeded", map[string]string{"username": "alice"}, 4900),
		"invalid basket_id":  event(t, "payment_intent.succeeded", map[string]string{"basket_id": "twelve"}, 4900),
		"negative basket_id": event(t, "payment_intent.payment_failed", map[string]string{"basket_id": "-3"}, 0),
		"not json":           []byte("not json"),
	}
	for name, body := range invalid {
		t.Run(name, func(t *testing.T) {
			if _, err := p.ParseNotification(ctx, signed(body, testSecret, time.Now()), body); !errors.Is(err, payment.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
