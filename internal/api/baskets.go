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
	"slices"
	"strings"
	"time"

	"fulfill/internal/auth"
	"fulfill/internal/basket"
	"fulfill/internal/fulfillment"
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
func handleBasketCreate(d Deps, own *owners) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := logFrom(r)
		caller := userFrom(r.Context())
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			writeError(w, r, log, fmt.Errorf("%w: cannot read body: %v", errBadRequest, err))
			return
		}
		key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
		if key == "" {
			status, out, err := createBasket(r.Context(), d, own, caller, body)
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
		status, out, err := createBasket(r.Context(), d, own, caller, body)
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

func createBasket(ctx context.Context, d Deps, own *owners, caller order.User, body []byte) (int, basketView, error) {
	var in basketIn
	if err := decodeBytes(body, &in); err != nil {
		return 0, basketView{}, err
	}
	if len(in.Products) == 0 {
		return 0, basketView{}, fmt.Errorf("%w: products must list at least one {\"sku\": …}", errBadRequest)
	}
	skus := make([]string, 0, len(in.Products))
	items := make([]basket.Item, 0, len(in.Products))
	for i, p := range in.Products {
		if strings.TrimSpace(p.SKU) == "" {
			return 0, basketView{}, fmt.Errorf("%w: products[%d].sku is required", errBadRequest, i)
		}
		skus = append(skus, strings.TrimSpace(p.SKU))
		items = append(items, basket.Item{SKU: strings.TrimSpace(p.SKU), Quantity: p.Quantity})
	}
	buyer := caller
	if in.Username != "" && in.Username != caller.Username {
		if !caller.IsStaff && !slices.Contains(d.ServiceUsers, caller.Username) {
			return 0, basketView{}, fmt.Errorf("%w: only staff and service users may create a basket for another user", auth.ErrForbidden)
		}
		buyer = order.User{Username: in.Username}
	}
	products, err := d.Store.ProductsBySKU(ctx, skus)
	if err != nil {
		return 0, basketView{}, err
	}
	now := d.Now()
	for _, p := range products {
		if err := d.Rollout.Sold(p); err != nil {
			return 0, basketView{}, err
		}
	}
	b, err := basket.BuildItems(buyer, items, products, now)
	if err != nil {
		return 0, basketView{}, err
	}
	if !in.Checkout {
		id, err := d.Store.CreateBasket(ctx, b)
		return http.StatusOK, basketView{ID: id}, err
	}
	if !b.Free() {
		if d.Checkout == nil || in.PaymentProcessorName == "" {
			return 0, basketView{}, fmt.Errorf("%w: the basket costs %s %s; name a payment_processor_name", basket.ErrNotFree,
				moneyString(b.Total, b.Currency), b.Currency)
		}
		id, data, err := d.Checkout.StartPayment(ctx, b, in.PaymentProcessorName, d.PublicURL)
		if err != nil {
			return 0, basketView{}, err
		}
		return http.StatusOK, basketView{ID: id, PaymentData: data}, nil
	}
	owner := own.next()
	o, err := d.Store.PlaceOrder(ctx, b, caller.Username, owner, now.Add(d.Service.Lease))
	if err != nil {
		return 0, basketView{}, err
	}
	// The order is committed; from here on a failure only delays it: the
	// lines stay due for the retry worker.
	done, err := d.Service.Run(ctx, fulfillment.Claim{Order: o, Lines: o.Lines}, owner, caller.Username)
	if err != nil {
		logFromCtx(ctx).Error("fulfill after checkout", "order", o.Number, "error", err)
		done = o
	}
	return http.StatusOK, basketView{ID: o.BasketID, Order: &basketOrderView{Number: done.Number, Status: string(done.Status)}}, nil
}
