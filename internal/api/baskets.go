package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/basket"
	"fulfill/internal/checkout"
	"fulfill/internal/order"
)

type basketIn struct {
	Products []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"products"`
	Checkout             bool   `json:"checkout"`
	PaymentProcessorName string `json:"payment_processor_name"`
	// Username buys for another learner (staff only).
	Username string `json:"username"`
	// Vouchers or Code name the basket's voucher code (at most one).
	Vouchers []string `json:"vouchers"`
	Code     string   `json:"code"`
}

type basketOrderView struct {
	Number string `json:"number"`
	Status string `json:"status"`
}

type basketView struct {
	ID          int64            `json:"id"`
	Order       *basketOrderView `json:"order"`
	PaymentData any              `json:"payment_data"`
}

// handleBasketCreate is Otto's POST /api/v2/baskets/: it builds the
// caller's basket and, with "checkout": true and a zero total, places the
// order without payment and fulfills it synchronously.
func handleBasketCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		caller := userFrom(r.Context())
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			writeError(w, r, log, fmt.Errorf("%w: the request body could not be read (at most 1 MiB)", errBadRequest))
			return
		}
		ct := r.Header.Get("Content-Type")
		key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
		if key == "" {
			status, out, err := createBasket(r.Context(), d, caller, ct, body)
			if err != nil {
				writeError(w, r, log, err)
				return
			}
			writeJSON(w, status, out)
			return
		}
		if len(key) > 255 {
			writeError(w, r, log, fmt.Errorf("%w: Idempotency-Key is longer than 255 characters", errBadRequest))
			return
		}
		sum := sha256.Sum256(body)
		idem, err := d.Store.BeginIdempotent(r.Context(), caller.Username, key, hex.EncodeToString(sum[:]), time.Minute)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		switch {
		case idem.Mismatch:
			writeProblem(w, r, Problem{Status: http.StatusUnprocessableEntity, Title: "Idempotency-Key reused",
				Detail: "This Idempotency-Key was already used with a different request body."})
			return
		case idem.InFlight:
			writeProblem(w, r, Problem{Status: http.StatusConflict, Title: "Request in progress",
				Detail: "A request with this Idempotency-Key is still being processed; retry later."})
			return
		case !idem.Proceed:
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", "application/json")
			if idem.Status >= 400 {
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Set("Cache-Control", "no-store")
			}
			w.WriteHeader(idem.Status)
			_, _ = w.Write(idem.Body)
			return
		}
		status, out, err := createBasket(r.Context(), d, caller, ct, body)
		if err != nil {
			// 4xx answers are final for this body and are replayed; a failure
			// of ours is not stored so that the client can retry.
			rec := &bytes.Buffer{}
			bw := &bufferWriter{header: http.Header{}, body: rec}
			writeError(bw, r, log, err)
			if bw.status < 500 {
				_ = d.Store.FinishIdempotent(context.WithoutCancel(r.Context()), caller.Username, key, bw.status, rec.Bytes())
			} else {
				_ = d.Store.AbandonIdempotent(context.WithoutCancel(r.Context()), caller.Username, key)
			}
			for k, v := range bw.header {
				w.Header()[k] = v
			}
			w.WriteHeader(bw.status)
			_, _ = w.Write(rec.Bytes())
			return
		}
		raw, _ := json.Marshal(out)
		if err := d.Store.FinishIdempotent(context.WithoutCancel(r.Context()), caller.Username, key, status, raw); err != nil {
			log.Error("store idempotent answer", "error", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(append(raw, '\n'))
	})
}

type bufferWriter struct {
	header http.Header
	body   *bytes.Buffer
	status int
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(s int)           { b.status = s }

func createBasket(ctx context.Context, d Deps, caller order.User, contentType string, body []byte) (int, basketView, error) {
	var in basketIn
	if err := decodeBody(contentType, body, &in); err != nil {
		return 0, basketView{}, err
	}
	if len(in.Products) == 0 {
		return 0, basketView{}, fmt.Errorf("%w: products must list at least one {\"sku\": …}", errBadRequest)
	}
	items := make([]basket.Item, 0, len(in.Products))
	for i, p := range in.Products {
		if strings.TrimSpace(p.SKU) == "" {
			return 0, basketView{}, fmt.Errorf("%w: products[%d].sku is required", errBadRequest, i)
		}
		items = append(items, basket.Item{SKU: strings.TrimSpace(p.SKU), Quantity: p.Quantity})
	}
	code := strings.TrimSpace(in.Code)
	for _, v := range in.Vouchers {
		if v = strings.TrimSpace(v); v != "" && code != "" && !strings.EqualFold(v, code) {
			return 0, basketView{}, fmt.Errorf("%w: a basket holds at most one coupon code", errBadRequest)
		} else if v != "" {
			code = v
		}
	}
	got, err := d.Checkout.Buy(ctx, caller, checkout.Purchase{Items: items, For: in.Username, Checkout: in.Checkout,
		Processor: in.PaymentProcessorName, Code: code})
	if err != nil {
		return 0, basketView{}, err
	}
	v := basketView{ID: got.BasketID}
	if got.Order != nil {
		v.Order = &basketOrderView{Number: got.Order.Number, Status: string(got.Order.Status)}
	}
	if got.Payment != nil {
		v.PaymentData = *got.Payment
	}
	return http.StatusOK, v, nil
}

// handleBasketOrder is Otto's GET /api/v2/baskets/{id}/order/, which the
// LMS receipt page polls (retrying on 404) until the payment's order is
// placed: the order of the caller's basket. Another user's basket, or
// one whose order is not placed yet, is not found, as in Otto, which
// looks the order up by basket and user.
func handleBasketOrder(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, log, fmt.Errorf("basket %q: %w", r.PathValue("id"), order.ErrNotFound))
			return
		}
		sb, err := d.Checkout.Basket(r.Context(), userFrom(r.Context()), id)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if sb.OrderNumber == "" {
			writeError(w, r, log, fmt.Errorf("basket %d has no order yet: %w", id, order.ErrNotFound))
			return
		}
		o, err := d.Store.GetOrder(r.Context(), sb.OrderNumber)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeOrder(w, r, d, o)
	})
}

// handlePaymentProcessors is Otto's GET /api/v2/payment/processors/: the
// names of the enabled processors, the default one first, which the LMS's
// payment page offers in that order.
func handlePaymentProcessors(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := d.Checkout.ProcessorNames()
		def := d.Checkout.DefaultProcessorName()
		out := make([]string, 0, len(names))
		if def != "" {
			out = append(out, def)
		}
		for _, n := range names {
			if n != def {
				out = append(out, n)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
}
