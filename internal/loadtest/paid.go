package loadtest

// Paid checkout (--paid) and the open-loop report (--rate).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/money"
	"fulfill/internal/payment"
)

// loadPaidReport is what --paid measured and verified.
type loadPaidReport struct {
	Processor         string  `json:"processor"`
	Price             string  `json:"price"`
	Currency          string  `json:"currency"`
	DuplicateFraction float64 `json:"duplicate_fraction"`
	// The report's latency_ms is the whole checkout: from the basket POST
	// (with --rate: from when the order was due) to the answer of the
	// accept notification. Basket and Notify are its two requests.
	Basket loadLatency `json:"basket_latency_ms"`
	Notify loadLatency `json:"notify_latency_ms"`
	// Redeliveries counts notifications sent again after a transport error
	// or a 5xx, as a gateway does (their time is in notify_latency_ms).
	Redeliveries int64          `json:"redeliveries"`
	Duplicates   loadDuplicates `json:"duplicates"`
	Ledger       loadLedger     `json:"ledger"`
}

// loadDuplicates are the second accepts (another reference) of a basket
// already paid, which the service must refund.
type loadDuplicates struct {
	Sent          int64       `json:"sent"`
	Refunded      int64       `json:"refunded"`       // answered "refunded"
	RefundPending int64       `json:"refund_pending"` // answered "refund_pending"
	Failed        int64       `json:"failed"`         // any other answer, or none
	Latency       loadLatency `json:"latency_ms"`
}

// loadLedger is this run's part of the payment ledger (references
// lt-<run>-…) and of the orders (learners ld<run>-…), read back after the
// run, and whether they balance.
type loadLedger struct {
	Payments int            `json:"payments"`
	ByState  map[string]int `json:"by_state"`
	Currency string         `json:"currency"`
	// AcceptedSum is every accepted payment; PlacedSum those that paid for
	// an order (placed, replayed); RefundSum those given back (refunded,
	// refund_due); LeftSum those still received or needing attention.
	AcceptedSum string `json:"accepted_sum"`
	PlacedSum   string `json:"placed_sum"`
	RefundSum   string `json:"refund_sum"`
	Refunds     int    `json:"refunds"`
	LeftSum     string `json:"left_sum"`
	// Orders are the run's orders (GET /api/v2/orders/), OrdersSum their
	// total_excl_tax.
	Orders    int    `json:"orders"`
	OrdersSum string `json:"orders_sum"`
	// Balanced: accepted = orders + refunds, placed = orders (one placed
	// payment per order), refunds = duplicates, nothing left.
	Balanced bool `json:"balanced"`
}

// loadOpenLoop is the open-loop view of a --rate run.
type loadOpenLoop struct {
	TargetRate float64 `json:"target_rate"`
	// LatencyFrom says where latency counts from: each order's scheduled
	// send time (order i is due i/rate after the start), so an order that
	// waited for a free learner counts its wait and a service that falls
	// behind cannot hide it (no coordinated omission). latency_ms is
	// measured the same way.
	LatencyFrom string  `json:"latency_from"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
	// P99FromSend is what a closed-loop tool would report: from the
	// actual send.
	P99FromSend float64 `json:"p99_from_actual_send_ms"`
	P99SendLag  float64 `json:"p99_send_lag_ms"`
	MaxSendLag  float64 `json:"max_send_lag_ms"`
	// Due counts the orders due by the end of the load; UnsentDue those
	// of them never sent because every learner was busy. Counting those at
	// their wait so far, P99WithUnsent is a lower bound of the p99.
	Due           int64   `json:"due"`
	UnsentDue     int64   `json:"unsent_due"`
	P99WithUnsent float64 `json:"p99_with_unsent_ms,omitempty"`
}

// paidTally is one learner's count of paid checkouts, merged into
// loadTest.paid at the end.
type paidTally struct {
	dupSent, dupRefunded, dupPending, dupFailed int64
	redeliveries                                int64
	dupLat                                      []time.Duration
}

func (t *paidTally) merge(o *paidTally) {
	t.dupSent += o.dupSent
	t.dupRefunded += o.dupRefunded
	t.dupPending += o.dupPending
	t.dupFailed += o.dupFailed
	t.redeliveries += o.redeliveries
	t.dupLat = append(t.dupLat, o.dupLat...)
}

// setupPaid prepares --paid once the paid seat exists: the basket body,
// and the newest payment of the ledger (this run's are all newer).
func (lt *loadTest) setupPaid(ctx context.Context) error {
	if lt.sandboxSecret == nil {
		lt.sandboxSecret = []byte(lt.o.sandboxSecret)
	}
	lt.paidBody, _ = json.Marshal(map[string]any{"products": []map[string]string{{"sku": lt.sku}}, "checkout": true,
		"payment_processor_name": payment.SandboxName})
	rows, err := lt.ledgerPage(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("loadtest: --paid: read the payment ledger: %w", err)
	}
	if len(rows) > 0 {
		lt.ledgerFloor = rows[0].ID
	}
	lt.rep.Paid = &loadPaidReport{Processor: payment.SandboxName, Price: lt.price.String(), Currency: lt.price.Currency,
		DuplicateFraction: lt.o.paidDuplicates}
	if lt.app != nil {
		lt.note("--paid: the in-process service runs the sandbox processor (--payment-processors sandbox --sandbox-allow-production) " +
			"and, as `fulfill serve` does, the retry worker, the refund worker and the payment reconciler")
	}
	return nil
}

// duplicate reports whether basket i is paid twice: a fraction
// --paid-duplicates of the baskets, evenly spread.
func (lt *loadTest) duplicate(i int64) bool {
	f := lt.o.paidDuplicates
	return f > 0 && math.Floor(float64(i+1)*f) > math.Floor(float64(i)*f)
}

// reference is the gateway's reference of learner i's payment.
func (lt *loadTest) reference(i int64, suffix string) string {
	return lt.referencePrefix() + strconv.FormatInt(i, 10) + suffix
}

func (lt *loadTest) referencePrefix() string { return "lt-" + lt.runID + "-" }

func (lt *loadTest) userPrefix() string { return "ld" + lt.runID + "-" }

// buyPaid is one paid checkout: the basket POST (frozen for the sandbox),
// then the gateway's signed accept notification, which places the order;
// with dup, a second accept of the same basket with another reference,
// which the service must refund.
func (lt *loadTest) buyPaid(ctx context.Context, i int64, tok string, dup bool, t *paidTally) checkoutOutcome {
	var out checkoutOutcome
	start := time.Now()
	status, raw, err := lt.do(ctx, http.MethodPost, "/api/v2/baskets/", tok, lt.paidBody)
	out.done = time.Now()
	out.basket = out.done.Sub(start)
	n, class := paymentOf(status, raw, err)
	if class != "" {
		out.errs = append(out.errs, newLoadError("basket: "+class, raw, err))
		return out
	}
	n.Reference = lt.reference(i, "")
	a, class, raw, err := lt.notify(ctx, n, t)
	out.done = time.Now()
	out.notify = out.done.Sub(start) - out.basket
	switch {
	case class != "":
		out.errs = append(out.errs, newLoadError("accept: "+class, raw, err))
		return out
	case a.Status != "accepted" || a.OrderNumber == "":
		out.errs = append(out.errs, newLoadError("accept: answered "+strconv.Quote(a.Status), raw, nil))
		return out
	}
	out.number, out.status = a.OrderNumber, a.OrderStatus
	if !dup {
		return out
	}
	n.Reference = lt.reference(i, "-dup")
	t.dupSent++
	t0 := time.Now()
	d, class, raw, err := lt.notify(ctx, n, t)
	switch {
	case class != "":
		t.dupFailed++
		out.errs = append(out.errs, newLoadError("duplicate accept: "+class, raw, err))
		return out
	case d.Status == "refunded":
		t.dupRefunded++
	case d.Status == "refund_pending":
		t.dupPending++
	default:
		t.dupFailed++
		out.errs = append(out.errs, newLoadError("duplicate accept: answered "+strconv.Quote(d.Status), raw, nil))
		return out
	}
	t.dupLat = append(t.dupLat, time.Since(t0))
	return out
}

// paymentOf reads the basket answer of a paid checkout into the
// notification the gateway will send, or returns the error class.
func paymentOf(status int, raw []byte, err error) (payment.SandboxNotification, string) {
	var n payment.SandboxNotification
	if err != nil {
		return n, "transport: " + transportKind(err)
	}
	if status != http.StatusOK {
		return n, fmt.Sprintf("HTTP %d", status)
	}
	var v struct {
		ID    int64 `json:"id"`
		Order *struct {
			Number string `json:"number"`
		} `json:"order"`
		PaymentData *payment.Data `json:"payment_data"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return n, "HTTP 200 with an undecodable body"
	}
	if v.Order != nil && v.Order.Number != "" {
		return n, "HTTP 200 with an order placed without payment"
	}
	if v.PaymentData == nil || v.PaymentData.ProcessorName != payment.SandboxName {
		return n, "HTTP 200 without sandbox payment_data"
	}
	fd := v.PaymentData.FormData
	if id, err := strconv.ParseInt(fd["basket_id"], 10, 64); err != nil || id != v.ID || id <= 0 {
		return n, "HTTP 200 with payment_form_data of another basket"
	}
	return payment.SandboxNotification{BasketID: v.ID, Amount: fd["amount"], Currency: fd["currency"], Decision: payment.Accept}, ""
}

type notifyAnswer struct {
	Status      string `json:"status"`
	OrderNumber string `json:"order_number"`
	OrderStatus string `json:"order_status"`
	PaymentID   int64  `json:"payment_id"`
	Replayed    bool   `json:"replayed"`
}

// notify sends the gateway's signed notification, again after a transport
// error or a 5xx (as a gateway redelivers, at most loadNotifyAttempts
// times), and returns the answer or the error class.
func (lt *loadTest) notify(ctx context.Context, n payment.SandboxNotification, t *paidTally) (notifyAnswer, string, []byte, error) {
	var a notifyAnswer
	body, _ := json.Marshal(n)
	h := http.Header{}
	h.Set(payment.SignatureHeader, payment.Sign(lt.sandboxSecret, body))
	for attempt := 1; ; attempt++ {
		status, raw, err := lt.doHeader(ctx, http.MethodPost, "/payment/sandbox/notify/", h, body)
		if (err != nil || status >= 500) && attempt < loadNotifyAttempts && ctx.Err() == nil {
			t.redeliveries++
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
			continue
		}
		switch {
		case err != nil:
			return a, "transport: " + transportKind(err), raw, err
		case status != http.StatusOK:
			return a, fmt.Sprintf("HTTP %d", status), raw, nil
		case json.Unmarshal(raw, &a) != nil:
			return a, "HTTP 200 with an undecodable body", raw, nil
		}
		return a, "", raw, nil
	}
}

// paidLatency fills the paid report's latencies from the samples counted.
func (lt *loadTest) paidLatency(samples []loadSample) {
	p := lt.rep.Paid
	if p == nil {
		return
	}
	b := make([]time.Duration, 0, len(samples))
	n := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		b = append(b, s.basket)
		n = append(n, s.notify)
	}
	p.Basket, p.Notify = summarize(b), summarize(n)
}

// openLoop fills the open-loop report of a --rate run from the samples
// counted (latency from each order's scheduled send time), the length of
// the load phase and the number of orders the learners took up.
func (lt *loadTest) openLoop(samples []loadSample, elapsed time.Duration, picked int64) {
	o := lt.o
	if o.rate <= 0 {
		return
	}
	ol := &loadOpenLoop{TargetRate: o.rate, LatencyFrom: "scheduled send time"}
	d := make([]time.Duration, 0, len(samples))
	fromSend := make([]time.Duration, 0, len(samples))
	lag := make([]time.Duration, 0, len(samples))
	var h loadHist
	for _, s := range samples {
		d = append(d, s.d)
		fromSend = append(fromSend, s.d-s.lag)
		lag = append(lag, s.lag)
		h.add(s.d)
	}
	all, send, lags := summarize(d), summarize(fromSend), summarize(lag)
	ol.P50, ol.P99, ol.P99FromSend, ol.P99SendLag, ol.MaxSendLag = all.P50, all.P99, send.P99, lags.P99, lags.Max
	// Order i is due at i/rate: 0 is due at once.
	ol.Due = int64(math.Floor(elapsed.Seconds()*o.rate)) + 1
	if o.orders > 0 {
		ol.Due = min(ol.Due, int64(o.orders))
	}
	ol.UnsentDue = max(0, ol.Due-picked)
	if ol.UnsentDue > 0 {
		// Order j, due at j/rate and never sent, waited at least until the
		// end: add those waits (in at most ~100,000 steps) to the histogram.
		step := max(1, ol.UnsentDue/100_000)
		for j := picked; j < ol.Due; j += step {
			due := time.Duration(float64(j) / o.rate * float64(time.Second))
			if due < o.warmup {
				continue
			}
			k := min(step, ol.Due-j)
			h.b[loadHistIndex((elapsed - due).Microseconds())].Add(k)
		}
		var c [loadHistBuckets]int64
		h.snapshot(&c)
		ol.P99WithUnsent = ms(histQuantile(&c, 0.99))
	}
	lt.rep.OpenLoop = ol
}

// ledgerRow is one payment as GET /api/v2/payments/ lists it.
type ledgerRow struct {
	ID          int64  `json:"id"`
	Reference   string `json:"reference"`
	BasketID    int64  `json:"basket_id"`
	Decision    string `json:"decision"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	State       string `json:"state"`
	Cause       string `json:"cause"`
	OrderNumber string `json:"order_number"`
}

// ledgerPage is one page of the payment ledger (staff), newest first,
// below cursor (0: from the newest).
func (lt *loadTest) ledgerPage(ctx context.Context, state string, cursor int64) ([]ledgerRow, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if cursor > 0 {
		q.Set("cursor", strconv.FormatInt(cursor, 10))
	}
	path := "/api/v2/payments/"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	status, raw, err := lt.do(ctx, http.MethodGet, path, lt.staff, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, status, snippetOf(raw))
	}
	var page struct {
		Results []ledgerRow `json:"results"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return page.Results, nil
}

// scanLedger calls fn with each of this run's payments in state (all
// states when empty), paging newest first down to the run's first.
func (lt *loadTest) scanLedger(ctx context.Context, state string, fn func(ledgerRow)) error {
	var cursor int64
	for {
		rows, err := lt.ledgerPage(ctx, state, cursor)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		for _, r := range rows {
			if r.ID <= lt.ledgerFloor {
				return nil
			}
			if strings.HasPrefix(r.Reference, lt.referencePrefix()) {
				fn(r)
			}
		}
		cursor = rows[len(rows)-1].ID
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// waitPayments waits until none of this run's payments is received (not
// yet placed) or refund_due (not yet credited), or until deadline.
func (lt *loadTest) waitPayments(ctx context.Context, deadline time.Time) {
	for {
		n := 0
		var scanErr error
		for _, st := range []payment.State{payment.StateReceived, payment.StateRefundDue} {
			if err := lt.scanLedger(ctx, string(st), func(ledgerRow) { n++ }); err != nil {
				scanErr = err
			}
		}
		if n == 0 && scanErr == nil {
			return
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return
		}
		fmt.Fprintf(lt.stderr, "\rsettling: %d payments received or refund due   ", n)
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// runOrder is one of this run's orders as GET /api/v2/orders/ lists it.
type runOrder struct {
	number string
	total  money.Amount
}

// runOrders lists the orders of this run's learners placed since the run
// started (a minute of margin for clocks), following the list's next
// links (keyset or page-number paging alike).
func (lt *loadTest) runOrders(ctx context.Context, runStart time.Time) ([]runOrder, error) {
	q := url.Values{}
	q.Set("placed_after", runStart.Add(-time.Minute).UTC().Format(time.RFC3339Nano))
	q.Set("page_size", "1000")
	path := "/api/v2/orders/?" + q.Encode()
	var out []runOrder
	for path != "" {
		status, raw, err := lt.do(ctx, http.MethodGet, path, lt.staff, nil)
		if err != nil {
			return out, err
		}
		if status != http.StatusOK {
			return out, fmt.Errorf("GET %s: HTTP %d: %s", path, status, snippetOf(raw))
		}
		var page struct {
			Next    *string `json:"next"`
			Results []struct {
				Number       string `json:"number"`
				TotalExclTax string `json:"total_excl_tax"`
				Currency     string `json:"currency"`
				User         struct {
					Username string `json:"username"`
				} `json:"user"`
			} `json:"results"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return out, fmt.Errorf("GET %s: %w", path, err)
		}
		for _, r := range page.Results {
			if !strings.HasPrefix(r.User.Username, lt.userPrefix()) {
				continue
			}
			amt, err := money.Parse(r.TotalExclTax, r.Currency)
			if err != nil {
				return out, fmt.Errorf("order %s: total %q %q: %w", r.Number, r.TotalExclTax, r.Currency, err)
			}
			out = append(out, runOrder{number: r.Number, total: amt})
		}
		path = ""
		if page.Next != nil && *page.Next != "" && len(page.Results) > 0 {
			if path, err = lt.sameService(*page.Next); err != nil {
				return out, err
			}
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// sameService turns a next link (a path, or an absolute URL written with
// the service's public URL, whichever it writes) into a path for lt.do:
// the tool only ever asks the service at lt.base.
func (lt *loadTest) sameService(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("next link %q: %w", link, err)
	}
	return u.RequestURI(), nil
}

// verifyLedger reads this run's payments and orders back and checks that
// they balance: the accepted payments are the orders' totals plus the
// refunds; each order has one placed payment; the refunds are the
// duplicate accepts; no payment is left received or needing attention.
func (lt *loadTest) verifyLedger(ctx context.Context, runStart time.Time, fail func(string, ...any)) {
	failed := 0
	bad := func(format string, args ...any) { failed++; fail(format, args...) }
	p := lt.rep.Paid
	t := &lt.paid
	p.Redeliveries = t.redeliveries
	p.Duplicates = loadDuplicates{Sent: t.dupSent, Refunded: t.dupRefunded, RefundPending: t.dupPending, Failed: t.dupFailed,
		Latency: summarize(t.dupLat)}
	l := &p.Ledger
	l.ByState = map[string]int{}
	cur := lt.price.Currency
	l.Currency = cur
	var accepted, placed, refunded, left, orders int64
	placedBy := map[string]int{} // order number → placed payments
	var refundedFor []string     // the orders the refunds duplicated
	otherCurrency := 0
	err := lt.scanLedger(ctx, "", func(r ledgerRow) {
		l.Payments++
		l.ByState[r.State]++
		if r.Decision != string(payment.Accept) {
			return
		}
		amt, err := money.Parse(r.Amount, r.Currency)
		if err != nil || amt.Currency != cur {
			otherCurrency++
			return
		}
		accepted += amt.Minor
		switch payment.State(r.State) {
		case payment.StatePlaced, payment.StateReplayed:
			placed += amt.Minor
			if payment.State(r.State) == payment.StatePlaced {
				placedBy[r.OrderNumber]++
			}
		case payment.StateRefunded, payment.StateRefundDue:
			refunded += amt.Minor
			l.Refunds++
			refundedFor = append(refundedFor, r.OrderNumber)
		default: // received, attention
			left += amt.Minor
		}
	})
	if err != nil {
		bad("cannot read the payment ledger: %v", err)
		return
	}
	ros, err := lt.runOrders(ctx, runStart)
	if err != nil {
		bad("cannot list the run's orders: %v", err)
		return
	}
	runNumbers := map[string]bool{}
	for _, o := range ros {
		if runNumbers[o.number] {
			continue // listed twice: a page-number list shifted while paging
		}
		if o.total.Currency != cur {
			otherCurrency++
			continue
		}
		orders += o.total.Minor
		runNumbers[o.number] = true
	}
	l.Orders = len(runNumbers)
	l.AcceptedSum, l.PlacedSum, l.RefundSum = money.Format(accepted, cur), money.Format(placed, cur), money.Format(refunded, cur)
	l.LeftSum, l.OrdersSum = money.Format(left, cur), money.Format(orders, cur)

	if otherCurrency > 0 {
		bad("%d payments or orders of the run are not in %s", otherCurrency, cur)
	}
	if n := l.ByState[string(payment.StateReceived)] + l.ByState[string(payment.StateAttention)]; n > 0 {
		bad("%d payments left received and %d needing attention (%s %s)", l.ByState[string(payment.StateReceived)],
			l.ByState[string(payment.StateAttention)], l.LeftSum, cur)
	}
	if accepted != orders+refunded {
		bad("accepted payments %s %s ≠ orders %s %s + refunds %s %s", l.AcceptedSum, cur, l.OrdersSum, cur, l.RefundSum, cur)
	}
	if placed != orders {
		bad("placed and replayed payments %s %s ≠ the orders' totals %s %s", l.PlacedSum, cur, l.OrdersSum, cur)
	}
	var unpaid, twice, stray int
	for n := range runNumbers {
		switch placedBy[n] {
		case 0:
			unpaid++
		case 1:
		default:
			twice++
		}
	}
	for n := range placedBy {
		if !runNumbers[n] {
			stray++
		}
	}
	if unpaid+twice+stray > 0 {
		bad("orders and placed payments do not pair up: %d orders without a placed payment, %d with several, %d placed payments of no order of the run",
			unpaid, twice, stray)
	}
	missing := 0
	for _, a := range lt.acked {
		if !runNumbers[a.number] {
			missing++
		}
	}
	if missing > 0 {
		bad("%d acknowledged orders are not in the order list", missing)
	}
	if extra := l.Orders - (len(lt.acked) - missing); extra > 0 {
		if n := lt.acceptErrors(); n > 0 {
			lt.note("%d orders were placed without the tool seeing them accepted (%d accept errors)", extra, n)
		} else {
			bad("%d orders of the run were placed but never acknowledged", extra)
		}
	}
	answered := t.dupRefunded + t.dupPending
	if int64(l.Refunds) < answered || int64(l.Refunds) > t.dupSent {
		bad("%d refunded payments for %d duplicate accepts sent (%d answered refunded or refund pending)", l.Refunds, t.dupSent, answered)
	}
	notDup := 0
	for _, n := range refundedFor {
		if !runNumbers[n] {
			notDup++
		}
	}
	if notDup > 0 {
		bad("%d refunded payments are not second payments of an order of the run", notDup)
	}
	l.Balanced = failed == 0
}

// acceptErrors counts the errors of accept notifications.
func (lt *loadTest) acceptErrors() int64 {
	var n int64
	for k, v := range lt.rep.Errors {
		if strings.HasPrefix(k, "accept: ") {
			n += v
		}
	}
	return n
}

func printOpenLoop(w io.Writer, r *loadReport) {
	ol := r.OpenLoop
	if ol == nil {
		fmt.Fprintln(w, "  closed loop (no --rate): latency counts from each request's actual send; --rate gives the open-loop p99")
		return
	}
	fmt.Fprintf(w, "  open loop at %.0f/s: p99 %.2f ms (p50 %.2f) measured from each order's scheduled send time, so time spent "+
		"waiting for a free learner counts (no coordinated omission); from the actual send p99 %.2f ms; sent up to %.2f ms late (p99 %.2f)\n",
		ol.TargetRate, ol.P99, ol.P50, ol.P99FromSend, ol.MaxSendLag, ol.P99SendLag)
	if ol.UnsentDue > 0 {
		fmt.Fprintf(w, "  open loop: %d of %d due orders were never sent (every learner busy); counting their wait so far, p99 ≥ %.2f ms\n",
			ol.UnsentDue, ol.Due, ol.P99WithUnsent)
	}
}

func printPaid(w io.Writer, p *loadPaidReport) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "\nPaid checkout (%s, %s %s a seat", p.Processor, p.Price, p.Currency)
	if p.DuplicateFraction > 0 {
		fmt.Fprintf(w, "; %.0f %% of baskets paid twice", p.DuplicateFraction*100)
	}
	fmt.Fprintln(w, ")")
	d := p.Duplicates
	fmt.Fprintf(w, "  notifications redelivered: %d; duplicate accepts: %d sent, %d refunded, %d refund pending, %d failed",
		p.Redeliveries, d.Sent, d.Refunded, d.RefundPending, d.Failed)
	if d.Latency.Count > 0 {
		fmt.Fprintf(w, "; their latency (ms) p50 %.2f  p99 %.2f", d.Latency.P50, d.Latency.P99)
	}
	fmt.Fprintln(w)
	l := p.Ledger
	if l.ByState == nil {
		fmt.Fprintln(w, "  ledger: not checked")
		return
	}
	keys := make([]string, 0, len(l.ByState))
	for k := range l.ByState {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, l.ByState[k]))
	}
	fmt.Fprintf(w, "  ledger: %d payments (%s)\n", l.Payments, strings.Join(parts, ", "))
	verdict := "balanced"
	if !l.Balanced {
		verdict = "NOT balanced"
	}
	fmt.Fprintf(w, "  accepted %s %s = orders %s %s (%d orders; placed payments %s) + refunds %s %s (%d); left received or needing attention %s: %s\n",
		l.AcceptedSum, l.Currency, l.OrdersSum, l.Currency, l.Orders, l.PlacedSum, l.RefundSum, l.Currency, l.Refunds, l.LeftSum, verdict)
}
