package sqlstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"fulfill/internal/catalog"
	"fulfill/internal/offer"
)

// Discounts: offers, vouchers, coupons and the uses orders record
// (migration 00007). Locks are always taken in one order, so that two
// transactions never wait on each other: a voucher row, then offer_usage
// rows by ascending offer id, then offers rows (status), then
// pricing_version (by the triggers).

const offerCols = `o.id, o.name, o.offer_type, o.status, o.priority, o.is_exclusive, o.start_at, o.end_at, o.program_uuid,
	o.product_range, o.condition_type, o.condition_value, o.benefit_type, o.benefit_value, o.max_affected_items, o.currency,
	o.max_basket_applications, o.max_user_applications, o.max_global_applications, o.email_domains,
	u.num_applications, u.num_orders`

const offerFrom = ` FROM offers o JOIN offer_usage u ON u.offer_id = o.id`

type rowScanner interface{ Scan(dest ...any) error }

// offerScan receives an offer's columns (offerCols) and finishes it.
type offerScan struct {
	o            offer.Offer
	start, end   nullTime
	rng, domains string
}

func (s *offerScan) dests() []any {
	o := &s.o
	return []any{&o.ID, &o.Name, &o.Type, &o.Status, &o.Priority, &o.Exclusive, &s.start, &s.end, &o.ProgramUUID,
		&s.rng, &o.Condition.Type, &o.Condition.Value, &o.Benefit.Type, &o.Benefit.Value, &o.Benefit.MaxAffectedItems, &o.Currency,
		&o.MaxBasketApplications, &o.MaxUserApplications, &o.MaxGlobalApplications, &s.domains,
		&o.NumApplications, &o.NumOrders}
}

func (s *offerScan) offer() (offer.Offer, error) {
	o := s.o
	o.Start, o.End = s.start.ptr(), s.end.ptr()
	if err := json.Unmarshal([]byte(s.rng), &o.Condition.Range); err != nil {
		return o, fmt.Errorf("offer %d range: %w", o.ID, err)
	}
	if s.domains != "" {
		o.EmailDomains = strings.Split(s.domains, ",")
	}
	return o, nil
}

func scanOffer(r rowScanner) (offer.Offer, error) {
	var s offerScan
	if err := r.Scan(s.dests()...); err != nil {
		return s.o, err
	}
	return s.offer()
}

func scanOffers(rows *sql.Rows) ([]offer.Offer, error) {
	defer rows.Close()
	var out []offer.Offer
	for rows.Next() {
		o, err := scanOffer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// insertOffer writes a new offer and its usage counters.
func (db *DB) insertOffer(ctx context.Context, tx *Tx, o offer.Offer, now time.Time) (int64, error) {
	rng, _ := json.Marshal(o.Condition.Range)
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO offers (name, offer_type, status, priority, is_exclusive, start_at, end_at, program_uuid,
			product_range, condition_type, condition_value, benefit_type, benefit_value, max_affected_items, currency,
			max_basket_applications, max_user_applications, max_global_applications, email_domains, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) RETURNING id`,
		o.Name, o.Type, o.Status, o.Priority, o.Exclusive, db.tsp(o.Start), db.tsp(o.End), o.ProgramUUID,
		string(rng), o.Condition.Type, o.Condition.Value, o.Benefit.Type, o.Benefit.Value, o.Benefit.MaxAffectedItems, o.Currency,
		o.MaxBasketApplications, o.MaxUserApplications, o.MaxGlobalApplications, strings.Join(o.EmailDomains, ","), db.ts(now)).Scan(&id)
	if err != nil {
		if isUniqueViolation(err, "offers_name_key", "offers.name") {
			return 0, fmt.Errorf("%w: an offer named %q exists already", offer.ErrInvalid, o.Name)
		}
		return 0, fmt.Errorf("insert offer: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO offer_usage (offer_id) VALUES ($1)`, id); err != nil {
		return 0, fmt.Errorf("insert offer usage: %w", err)
	}
	return id, nil
}

// CreateOffer stores a new offer (a site offer, or one for vouchers to
// share) and returns it with its id; offer.ErrInvalid.
func (db *DB) CreateOffer(ctx context.Context, o offer.Offer) (offer.Offer, error) {
	if o.Status == "" {
		o.Status = offer.StatusOpen
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	var id int64
	defer db.noSiteOffers.clear() // after the write: no lookup keeps "none"
	err := db.tx(ctx, func(tx *Tx) error {
		var err error
		id, err = db.insertOffer(ctx, tx, o, db.clock())
		return err
	})
	if err != nil {
		return o, err
	}
	return db.GetOffer(ctx, id)
}

// GetOffer returns an offer with its counters; offer.ErrNotFound.
func (db *DB) GetOffer(ctx context.Context, id int64) (offer.Offer, error) {
	o, err := scanOffer(db.rd.QueryRowContext(ctx, `SELECT `+offerCols+offerFrom+` WHERE o.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("offer %d: %w", id, offer.ErrNotFound)
	}
	return o, err
}

// SetOfferStatus moves an offer to status to (offer.Statuses); an offer
// whose total limit is reached cannot be re-opened (offer.ErrLimitReached).
func (db *DB) SetOfferStatus(ctx context.Context, id int64, to offer.Status) error {
	defer db.noSiteOffers.clear() // after the write: no lookup keeps "none"
	return db.tx(ctx, func(tx *Tx) error {
		var num int64
		err := tx.QueryRowContext(ctx, `SELECT num_applications FROM offer_usage WHERE offer_id = $1`+db.forUpdate(), id).Scan(&num)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("offer %d: %w", id, offer.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock offer: %w", err)
		}
		var from offer.Status
		var maxGlobal int64
		if err := tx.QueryRowContext(ctx, `SELECT status, max_global_applications FROM offers WHERE id = $1`, id).Scan(&from, &maxGlobal); err != nil {
			return fmt.Errorf("offer status: %w", err)
		}
		if err := offer.Statuses.Check(from, to); err != nil {
			return err
		}
		if to == offer.StatusOpen && maxGlobal > 0 && num >= maxGlobal {
			return fmt.Errorf("%w: offer %d has used its %d applications; raise its limit first", offer.ErrLimitReached, id, maxGlobal)
		}
		_, err = tx.ExecContext(ctx, `UPDATE offers SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`, to, db.ts(db.clock()), id, from)
		return err
	})
}

// SiteOffers returns the Open site offers that have not ended at now,
// highest priority first (those not yet started too: the applicator says
// so, and a cached price knows when it changes).
//
// That there are none is remembered for a second (emptyCache): a checkout
// prices every basket, and most sites have no site offer.
func (db *DB) SiteOffers(ctx context.Context, now time.Time) ([]offer.Offer, error) {
	wall := time.Now()
	none, gen := db.noSiteOffers.empty(now, wall)
	if none {
		return nil, nil
	}
	rows, err := db.rd.QueryContext(ctx, `SELECT `+offerCols+offerFrom+`
		WHERE o.offer_type = $1 AND o.status = $2 AND (o.end_at IS NULL OR o.end_at > $3) ORDER BY o.priority DESC, o.id`,
		offer.TypeSite, offer.StatusOpen, db.ts(now))
	if err != nil {
		return nil, fmt.Errorf("site offers: %w", err)
	}
	offers, err := scanOffers(rows)
	if err == nil {
		db.noSiteOffers.found(len(offers), gen, now, wall)
	}
	return offers, err
}

const voucherCols = `v.id, v.code, v.voucher_usage, v.start_at, v.end_at, COALESCE(v.coupon_id, 0), v.created_at,
	(SELECT COUNT(*) FROM voucher_applications a WHERE a.voucher_id = v.id AND a.released_at IS NULL)`

func scanVoucher(r rowScanner) (offer.Voucher, error) {
	var v offer.Voucher
	var start, end, created nullTime
	err := r.Scan(&v.ID, &v.Code, &v.Usage, &start, &end, &v.CouponID, &created, &v.Uses)
	v.Start, v.End, v.CreatedAt = start.Time, end.Time, created.Time
	return v, err
}

// VoucherByCode returns the voucher with this code, matched
// case-insensitively, with its offers; offer.ErrVoucherNotFound.
func (db *DB) VoucherByCode(ctx context.Context, code string) (offer.Voucher, error) {
	var v offer.Voucher
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		v, err = scanVoucher(tx.QueryRowContext(ctx, `SELECT `+voucherCols+` FROM vouchers v WHERE v.code = $1`, offer.NormalizeCode(code)))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %q", offer.ErrVoucherNotFound, code)
		}
		if err != nil {
			return fmt.Errorf("voucher: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+offerCols+offerFrom+` JOIN voucher_offers vo ON vo.offer_id = o.id
			WHERE vo.voucher_id = $1 ORDER BY o.id`, v.ID)
		if err != nil {
			return fmt.Errorf("voucher offers: %w", err)
		}
		v.Offers, err = scanOffers(rows)
		return err
	})
	return v, err
}

// OfferUsage returns the live uses the applicator needs for username: the
// voucher's (by anyone and by this user; voucherID 0 for none) and this
// user's applications of each of offerIDs. An anonymous user ("") has none
// of their own.
func (db *DB) OfferUsage(ctx context.Context, username string, voucherID int64, offerIDs []int64) (offer.Usage, error) {
	u := offer.Usage{ByUser: map[int64]int{}}
	if voucherID == 0 && (username == "" || len(offerIDs) == 0) {
		return u, nil // nothing to count: no transaction (every checkout asks)
	}
	err := db.read(ctx, func(tx *Tx) error {
		if voucherID != 0 {
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN username = $2 AND username <> '' THEN 1 ELSE 0 END), 0)
				FROM voucher_applications WHERE voucher_id = $1 AND released_at IS NULL`, voucherID, username).
				Scan(&u.VoucherUses, &u.VoucherUsesByUser); err != nil {
				return fmt.Errorf("voucher usage: %w", err)
			}
		}
		if username == "" || len(offerIDs) == 0 {
			return nil
		}
		args := []any{username}
		for _, id := range offerIDs {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx, `SELECT offer_id, SUM(applications) FROM offer_applications
			WHERE username = $1 AND released_at IS NULL AND offer_id IN (`+inList(len(offerIDs), 1)+`) GROUP BY offer_id`, args...)
		if err != nil {
			return fmt.Errorf("offer usage: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			u.ByUser[id] = n
		}
		return rows.Err()
	})
	return u, err
}

// PricingVersion changes whenever what a basket costs may change (offers,
// vouchers, an offer's status, a stock record's price; see migration
// 00007), whichever replica or tool wrote it: prices cached under one
// version are stale under another.
func (db *DB) PricingVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.rd.QueryRowContext(ctx, `SELECT version FROM pricing_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("pricing version: %w", err)
	}
	return v, nil
}

// ProductsByStockRecordIDs returns the products of the given stock
// records, keyed by stock record id; unknown ids are absent.
func (db *DB) ProductsByStockRecordIDs(ctx context.Context, ids []int64) (map[int64]catalog.Product, error) {
	out := map[int64]catalog.Product{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.rd.QueryContext(ctx, `SELECT s.sku FROM stock_records s WHERE s.id IN (`+inList(len(ids), 0)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("stock records: %w", err)
	}
	var skus []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		skus = append(skus, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ps, err := db.ProductsBySKU(ctx, skus)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		out[p.Stock.ID] = p
	}
	return out, nil
}

// couponOfferName is Otto's generate_offer_name.
func couponOfferName(id int64, o offer.Offer) string {
	return fmt.Sprintf("Coupon [%d]-%s-%s", id, o.Benefit.Type, offer.FormatBenefit(o.Benefit, o.Currency))
}

// voucherBatch bounds the rows of one multi-row insert (6 arguments each,
// far below either engine's bind limit).
const voucherBatch = 500

// CreateCoupon stores a coupon built by offer.CouponSpec.Build, with its
// vouchers (their codes given, normalized), its offer and the links, in
// one transaction, and returns it as GetCoupon does. A code that exists
// already is offer.ErrCodeExists.
func (db *DB) CreateCoupon(ctx context.Context, c offer.Coupon) (offer.Coupon, error) {
	if len(c.Vouchers) != c.Quantity || c.Quantity < 1 {
		return c, fmt.Errorf("%w: a coupon needs its %d codes", offer.ErrInvalid, c.Quantity)
	}
	for i := range c.Vouchers {
		c.Vouchers[i].Code = offer.NormalizeCode(c.Vouchers[i].Code)
		if !offer.ValidCode(c.Vouchers[i].Code) {
			return c, fmt.Errorf("%w: code %q must be 1 to 128 letters and digits", offer.ErrInvalid, c.Vouchers[i].Code)
		}
	}
	if err := c.Offer.Validate(); err != nil {
		return c, err
	}
	now := db.clock()
	var id int64
	err := db.tx(ctx, func(tx *Tx) error {
		o := c.Offer
		o.Name = "pending " + randomHex()
		offerID, err := db.insertOffer(ctx, tx, o, now)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO coupons (title, category, client, price_minor, currency, note, notify_email,
				inactive, offer_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id`,
			c.Title, c.Category, c.Client, c.Price.Minor, c.Price.Currency, c.Note, c.NotifyEmail, c.Inactive, offerID, db.ts(now)).Scan(&id); err != nil {
			return fmt.Errorf("insert coupon: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offers SET name = $1 WHERE id = $2`, couponOfferName(id, c.Offer), offerID); err != nil {
			return fmt.Errorf("name coupon offer: %w", err)
		}
		for start := 0; start < len(c.Vouchers); start += voucherBatch {
			batch := c.Vouchers[start:min(start+voucherBatch, len(c.Vouchers))]
			args := make([]any, 0, 6*len(batch))
			for _, v := range batch {
				args = append(args, v.Code, c.Usage, db.ts(c.Start), db.ts(c.End), id, db.ts(now))
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO vouchers (code, voucher_usage, start_at, end_at, coupon_id, created_at) VALUES `+
				placeholders(len(batch), 6, 0), args...); err != nil {
				if isUniqueViolation(err, "vouchers_code_key", "vouchers.code") {
					if len(c.Vouchers) == 1 {
						return fmt.Errorf("%w: A coupon with code %s already exists", offer.ErrCodeExists, c.Vouchers[0].Code)
					}
					return fmt.Errorf("%w: one of the %d codes", offer.ErrCodeExists, len(c.Vouchers))
				}
				return fmt.Errorf("insert vouchers: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO voucher_offers (voucher_id, offer_id) SELECT id, $1 FROM vouchers WHERE coupon_id = $2`, offerID, id)
		return err
	})
	if err != nil {
		return c, err
	}
	return db.GetCoupon(ctx, id)
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// UpdateCoupon writes what may change of a coupon loaded by GetCoupon and
// changed by offer.CouponSpec.Build: its own fields, its offer's benefit
// value, limit, e-mail domains and range (re-opening or consuming the
// offer as the new limit says), and its vouchers' dates.
// offer.ErrCouponNotFound.
func (db *DB) UpdateCoupon(ctx context.Context, c offer.Coupon) (offer.Coupon, error) {
	if err := c.Offer.Validate(); err != nil {
		return c, err
	}
	now := db.clock()
	err := db.tx(ctx, func(tx *Tx) error {
		var offerID int64
		err := tx.QueryRowContext(ctx, `SELECT offer_id FROM coupons WHERE id = $1`, c.ID).Scan(&offerID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("coupon %d: %w", c.ID, offer.ErrCouponNotFound)
		}
		if err != nil {
			return fmt.Errorf("find coupon: %w", err)
		}
		var num int
		if err := tx.QueryRowContext(ctx, `SELECT num_applications FROM offer_usage WHERE offer_id = $1`+db.forUpdate(), offerID).Scan(&num); err != nil {
			return fmt.Errorf("lock coupon offer: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE coupons SET title = $1, category = $2, client = $3, price_minor = $4, note = $5,
				notify_email = $6, inactive = $7, updated_at = $8 WHERE id = $9`,
			c.Title, c.Category, c.Client, c.Price.Minor, c.Note, c.NotifyEmail, c.Inactive, db.ts(now), c.ID); err != nil {
			return fmt.Errorf("update coupon: %w", err)
		}
		var status offer.Status
		if err := tx.QueryRowContext(ctx, `SELECT status FROM offers WHERE id = $1`, offerID).Scan(&status); err != nil {
			return fmt.Errorf("coupon offer: %w", err)
		}
		full := c.Offer.MaxGlobalApplications > 0 && num >= c.Offer.MaxGlobalApplications
		switch {
		case status == offer.StatusConsumed && !full:
			status = offer.StatusOpen
		case status == offer.StatusOpen && full:
			status = offer.StatusConsumed
		}
		rng, _ := json.Marshal(c.Offer.Condition.Range)
		if _, err := tx.ExecContext(ctx, `UPDATE offers SET name = $1, status = $2, benefit_value = $3, max_global_applications = $4,
				email_domains = $5, product_range = $6, currency = $7, updated_at = $8 WHERE id = $9`,
			couponOfferName(c.ID, c.Offer), status, c.Offer.Benefit.Value, c.Offer.MaxGlobalApplications,
			strings.Join(c.Offer.EmailDomains, ","), string(rng), c.Offer.Currency, db.ts(now), offerID); err != nil {
			return fmt.Errorf("update coupon offer: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE vouchers SET start_at = $1, end_at = $2 WHERE coupon_id = $3`, db.ts(c.Start), db.ts(c.End), c.ID)
		return err
	})
	if err != nil {
		return c, err
	}
	return db.GetCoupon(ctx, c.ID)
}

// DeleteCoupon deletes a coupon, its vouchers with their uses, and its
// offer; offer.ErrCouponNotFound. Orders keep the codes they recorded.
func (db *DB) DeleteCoupon(ctx context.Context, id int64) error {
	return db.tx(ctx, func(tx *Tx) error {
		var offerID int64
		err := tx.QueryRowContext(ctx, `SELECT offer_id FROM coupons WHERE id = $1`, id).Scan(&offerID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("coupon %d: %w", id, offer.ErrCouponNotFound)
		}
		if err != nil {
			return fmt.Errorf("find coupon: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT id FROM vouchers WHERE coupon_id = $1 ORDER BY id`+db.forUpdate(), id); err != nil {
			return fmt.Errorf("lock vouchers: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT offer_id FROM offer_usage WHERE offer_id = $1`+db.forUpdate(), offerID); err != nil {
			return fmt.Errorf("lock coupon offer: %w", err)
		}
		for _, q := range []struct {
			sql string
			arg int64
		}{
			{`DELETE FROM vouchers WHERE coupon_id = $1`, id},
			{`DELETE FROM coupons WHERE id = $1`, id},
			{`DELETE FROM offers WHERE id = $1`, offerID},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.arg); err != nil {
				return fmt.Errorf("delete coupon: %w", err)
			}
		}
		return nil
	})
}

const couponCols = `c.id, c.title, c.category, c.client, c.price_minor, c.currency, c.note, c.notify_email, c.inactive,
	c.created_at, c.updated_at, (SELECT COUNT(*) FROM vouchers qv WHERE qv.coupon_id = c.id), ` + offerCols

const couponFrom = ` FROM coupons c JOIN offers o ON o.id = c.offer_id JOIN offer_usage u ON u.offer_id = o.id`

func scanCoupon(r rowScanner) (offer.Coupon, error) {
	var c offer.Coupon
	var created, updated nullTime
	var os offerScan
	dest := append([]any{&c.ID, &c.Title, &c.Category, &c.Client, &c.Price.Minor, &c.Price.Currency, &c.Note, &c.NotifyEmail,
		&c.Inactive, &created, &updated, &c.Quantity}, os.dests()...)
	if err := r.Scan(dest...); err != nil {
		return c, err
	}
	o, err := os.offer()
	c.Offer, c.CreatedAt, c.UpdatedAt = o, created.Time, updated.Time
	return c, err
}

// GetCoupon returns a coupon with its offer, counters and every voucher
// with its live uses; offer.ErrCouponNotFound.
func (db *DB) GetCoupon(ctx context.Context, id int64) (offer.Coupon, error) {
	var c offer.Coupon
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		c, err = scanCoupon(tx.QueryRowContext(ctx, `SELECT `+couponCols+couponFrom+` WHERE c.id = $1`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("coupon %d: %w", id, offer.ErrCouponNotFound)
		}
		if err != nil {
			return fmt.Errorf("get coupon: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+voucherCols+` FROM vouchers v WHERE v.coupon_id = $1 ORDER BY v.id`, id)
		if err != nil {
			return fmt.Errorf("coupon vouchers: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanVoucher(rows)
			if err != nil {
				return err
			}
			c.Vouchers = append(c.Vouchers, v)
		}
		return rows.Err()
	})
	if err == nil && len(c.Vouchers) > 0 {
		c.Usage, c.Start, c.End = c.Vouchers[0].Usage, c.Vouchers[0].Start, c.Vouchers[0].End
	}
	return c, err
}

// ListCoupons returns a page of coupons, newest first, and how many there
// are. Each carries only its first voucher (for its code, usage and dates).
func (db *DB) ListCoupons(ctx context.Context, offset, limit int) ([]offer.Coupon, int, error) {
	var out []offer.Coupon
	var total int
	err := db.read(ctx, func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM coupons`).Scan(&total); err != nil {
			return fmt.Errorf("count coupons: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+couponCols+couponFrom+` ORDER BY c.id DESC LIMIT $1 OFFSET $2`, limit, offset)
		if err != nil {
			return fmt.Errorf("list coupons: %w", err)
		}
		for rows.Next() {
			c, err := scanCoupon(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			v, err := scanVoucher(tx.QueryRowContext(ctx, `SELECT `+voucherCols+` FROM vouchers v WHERE v.coupon_id = $1 ORDER BY v.id LIMIT 1`, out[i].ID))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("first voucher: %w", err)
			}
			out[i].Vouchers = []offer.Voucher{v}
			out[i].Usage, out[i].Start, out[i].End = v.Usage, v.Start, v.End
		}
		return nil
	})
	return out, total, err
}

// CouponApplications returns every use of the coupon's vouchers, live and
// released, by voucher and then in order.
func (db *DB) CouponApplications(ctx context.Context, couponID int64) ([]offer.VoucherApplication, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT a.voucher_id, v.code, a.username, a.order_number, a.created_at, a.released_at
		FROM voucher_applications a JOIN vouchers v ON v.id = a.voucher_id WHERE v.coupon_id = $1 ORDER BY a.voucher_id, a.id`, couponID)
	if err != nil {
		return nil, fmt.Errorf("coupon applications: %w", err)
	}
	defer rows.Close()
	var out []offer.VoucherApplication
	for rows.Next() {
		var a offer.VoucherApplication
		var created, released nullTime
		if err := rows.Scan(&a.VoucherID, &a.Code, &a.Username, &a.OrderNumber, &created, &released); err != nil {
			return nil, err
		}
		a.CreatedAt, a.ReleasedAt = created.Time, released.ptr()
		out = append(out, a)
	}
	return out, rows.Err()
}

// RedeemVoucher records, in its own transaction, the use of the voucher
// with this code by user for the order numbered orderNumber; see
// redeemVoucher.
func (db *DB) RedeemVoucher(ctx context.Context, code string, user offer.User, orderNumber string) (offer.Voucher, error) {
	var v offer.Voucher
	err := db.tx(ctx, func(tx *Tx) error {
		var err error
		v, err = db.redeemVoucher(ctx, tx, "code", offer.NormalizeCode(code), user, orderNumber)
		return err
	})
	return v, err
}

// redeemVoucher records a use of a voucher (found by "code" or "id") under
// its row lock, so that of any number of orders at the same instant a
// Single use code goes to one, and a Once per customer code to one per
// user: the voucher must be active now and available to the user by its
// usage. Recording the same order again does nothing (a replay).
// offer.ErrVoucherNotFound, offer.ErrVoucherUnavailable (with Otto's
// words).
func (db *DB) redeemVoucher(ctx context.Context, tx *Tx, by string, key any, user offer.User, orderNumber string) (offer.Voucher, error) {
	now := db.clock()
	if strings.TrimSpace(orderNumber) == "" {
		return offer.Voucher{}, fmt.Errorf("%w: an order number is required", offer.ErrInvalid)
	}
	where := `code = $1`
	if by == "id" {
		where = `id = $1`
	}
	// Lock first, then read: on PostgreSQL a statement that waited for the
	// lock still reads other rows as they were when it began.
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM vouchers WHERE `+where+db.forUpdate(), key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return offer.Voucher{}, fmt.Errorf("%w: %v", offer.ErrVoucherNotFound, key)
	}
	if err != nil {
		return offer.Voucher{}, fmt.Errorf("lock voucher: %w", err)
	}
	v, err := scanVoucher(tx.QueryRowContext(ctx, `SELECT `+voucherCols+` FROM vouchers v WHERE v.id = $1`, id))
	if err != nil {
		return v, fmt.Errorf("voucher: %w", err)
	}
	var mine, replay int
	if err := tx.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(CASE WHEN username = $2 AND username <> '' AND released_at IS NULL THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN order_number = $3 THEN 1 ELSE 0 END), 0)
		FROM voucher_applications WHERE voucher_id = $1`, v.ID, user.Username, orderNumber).Scan(&mine, &replay); err != nil {
		return v, fmt.Errorf("voucher usage: %w", err)
	}
	if replay > 0 {
		return v, nil
	}
	usage := offer.Usage{VoucherUses: v.Uses, VoucherUsesByUser: mine}
	if words := voucherWords(v, user, usage, now); words != "" {
		return v, fmt.Errorf("%w: %s", offer.ErrVoucherUnavailable, words)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO voucher_applications (voucher_id, voucher_usage, username, order_number, created_at)
		VALUES ($1, $2, $3, $4, $5)`, v.ID, v.Usage, user.Username, orderNumber, db.ts(now)); err != nil {
		return v, fmt.Errorf("record voucher use: %w", err)
	}
	v.Uses++
	return v, nil
}

// voucherWords is why the voucher cannot be used now by user, or "".
func voucherWords(v offer.Voucher, user offer.User, usage offer.Usage, now time.Time) string {
	switch {
	case now.After(v.End):
		return fmt.Sprintf("Coupon code '%s' has expired.", v.Code)
	case now.Before(v.Start):
		return fmt.Sprintf("Coupon code '%s' is not active.", v.Code)
	case v.Usage == offer.UsageSingle && usage.VoucherUses > 0:
		return fmt.Sprintf("Coupon code '%s' is not available. This coupon has already been used.", v.Code)
	case v.Usage == offer.UsageOncePerCustomer && !user.SignedIn():
		return fmt.Sprintf("Coupon code '%s' is not available. This coupon is only available to signed-in users.", v.Code)
	case v.Usage == offer.UsageOncePerCustomer && usage.VoucherUsesByUser > 0:
		return fmt.Sprintf("Coupon code '%s' is not available. You have already used this coupon in a previous order.", v.Code)
	}
	return ""
}

// RecordOfferUse records, in its own transaction, u's applications of
// one offer by username for the order numbered orderNumber; see
// recordRedemption.
func (db *DB) RecordOfferUse(ctx context.Context, u offer.OfferUse, username, orderNumber string) error {
	return db.RecordRedemption(ctx, offer.Redemption{OrderNumber: orderNumber, Username: username, Offers: []offer.OfferUse{u}})
}

// RecordRedemption records, in its own transaction, what an order priced
// by offer.Apply used; see recordRedemption.
func (db *DB) RecordRedemption(ctx context.Context, r offer.Redemption) error {
	return db.tx(ctx, func(tx *Tx) error { return db.recordRedemption(ctx, tx, r) })
}

// recordRedemption records an order's voucher use (redeemVoucher) and its
// applications of each offer, under the offers' usage-row locks (taken by
// ascending id): an offer that is no longer Open, or whose total or
// per-user limit the applications would pass, fails the whole redemption
// with offer.ErrLimitReached, so that of any number of orders at the same
// instant exactly as many as the limit allows get the discount. An offer
// whose total limit is reached becomes Consumed. Recording an order again
// does nothing (a replay). Phase 2 calls it in the order's transaction.
func (db *DB) recordRedemption(ctx context.Context, tx *Tx, r offer.Redemption) error {
	if strings.TrimSpace(r.OrderNumber) == "" {
		return fmt.Errorf("%w: an order number is required", offer.ErrInvalid)
	}
	if r.VoucherID != 0 {
		if _, err := db.redeemVoucher(ctx, tx, "id", r.VoucherID, offer.User{Username: r.Username}, r.OrderNumber); err != nil {
			return err
		}
	}
	uses := slices.Clone(r.Offers)
	slices.SortFunc(uses, func(a, b offer.OfferUse) int { return cmp.Compare(a.OfferID, b.OfferID) })
	now := db.clock()
	var consumed []int64
	for _, u := range uses {
		if u.Applications < 1 {
			return fmt.Errorf("%w: offer %d: at least one application", offer.ErrInvalid, u.OfferID)
		}
		var num int
		err := tx.QueryRowContext(ctx, `SELECT num_applications FROM offer_usage WHERE offer_id = $1`+db.forUpdate(), u.OfferID).Scan(&num)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("offer %d: %w", u.OfferID, offer.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock offer usage: %w", err)
		}
		var status offer.Status
		var maxGlobal, maxUser, replay, mine int
		if err := tx.QueryRowContext(ctx, `SELECT o.status, o.max_global_applications, o.max_user_applications,
				(SELECT COUNT(*) FROM offer_applications a WHERE a.offer_id = o.id AND a.order_number = $2),
				(SELECT COALESCE(SUM(a.applications), 0) FROM offer_applications a
					WHERE a.offer_id = o.id AND a.username = $3 AND a.username <> '' AND a.released_at IS NULL)
			FROM offers o WHERE o.id = $1`, u.OfferID, r.OrderNumber, r.Username).Scan(&status, &maxGlobal, &maxUser, &replay, &mine); err != nil {
			return fmt.Errorf("offer limits: %w", err)
		}
		switch {
		case replay > 0:
			continue
		case status != offer.StatusOpen:
			return fmt.Errorf("%w: offer %d is %s", offer.ErrLimitReached, u.OfferID, status)
		case maxGlobal > 0 && num+u.Applications > maxGlobal:
			return fmt.Errorf("%w: offer %d has %d of %d applications left", offer.ErrLimitReached, u.OfferID, max(0, maxGlobal-num), maxGlobal)
		case maxUser > 0 && r.Username != "" && mine+u.Applications > maxUser:
			return fmt.Errorf("%w: %s has used offer %d %d of %d times", offer.ErrLimitReached, r.Username, u.OfferID, mine, maxUser)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO offer_applications (offer_id, username, order_number, applications, discount_minor, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, u.OfferID, r.Username, r.OrderNumber, u.Applications, max(u.Discount, 0), db.ts(now)); err != nil {
			return fmt.Errorf("record offer use: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offer_usage SET num_applications = num_applications + $1, num_orders = num_orders + 1
			WHERE offer_id = $2`, u.Applications, u.OfferID); err != nil {
			return fmt.Errorf("count offer use: %w", err)
		}
		if maxGlobal > 0 && num+u.Applications >= maxGlobal {
			consumed = append(consumed, u.OfferID)
		}
	}
	for _, id := range consumed {
		if err := offer.Statuses.Check(offer.StatusOpen, offer.StatusConsumed); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offers SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`,
			offer.StatusConsumed, db.ts(now), id, offer.StatusOpen); err != nil {
			return fmt.Errorf("consume offer: %w", err)
		}
	}
	return nil
}

// ReleaseVoucherUse gives back, in its own transaction, what the order
// numbered orderNumber used; see releaseVoucherUse.
func (db *DB) ReleaseVoucherUse(ctx context.Context, orderNumber string) (int, error) {
	var n int
	err := db.tx(ctx, func(tx *Tx) error {
		var err error
		n, err = db.releaseVoucherUse(ctx, tx, orderNumber)
		return err
	})
	return n, err
}

// releaseVoucherUse gives back what a fully refunded order used: its
// voucher use (a Single use code can be used again) and its applications
// of each offer (the counters go down, and a Consumed offer with room
// again re-opens). It returns how many uses it released; releasing twice
// releases nothing the second time. Otto never releases; fulfill does,
// on a full refund only.
func (db *DB) releaseVoucherUse(ctx context.Context, tx *Tx, orderNumber string) (int, error) {
	now := db.clock()
	res, err := tx.ExecContext(ctx, `UPDATE voucher_applications SET released_at = $1 WHERE order_number = $2 AND released_at IS NULL`,
		db.ts(now), orderNumber)
	if err != nil {
		return 0, fmt.Errorf("release voucher use: %w", err)
	}
	n64, _ := res.RowsAffected()
	released := int(n64)
	rows, err := tx.QueryContext(ctx, `SELECT id, offer_id, applications FROM offer_applications
		WHERE order_number = $1 AND released_at IS NULL ORDER BY offer_id`, orderNumber)
	if err != nil {
		return 0, fmt.Errorf("order's offer uses: %w", err)
	}
	type use struct{ id, offerID, n int64 }
	var uses []use
	for rows.Next() {
		var u use
		if err := rows.Scan(&u.id, &u.offerID, &u.n); err != nil {
			rows.Close()
			return 0, err
		}
		uses = append(uses, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var reopen []int64
	for _, u := range uses {
		var num int64
		if err := tx.QueryRowContext(ctx, `SELECT num_applications FROM offer_usage WHERE offer_id = $1`+db.forUpdate(), u.offerID).Scan(&num); err != nil {
			return 0, fmt.Errorf("lock offer usage: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offer_applications SET released_at = $1 WHERE id = $2`, db.ts(now), u.id); err != nil {
			return 0, fmt.Errorf("release offer use: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offer_usage SET num_applications = num_applications - $1, num_orders = num_orders - 1
			WHERE offer_id = $2`, min(u.n, num), u.offerID); err != nil {
			return 0, fmt.Errorf("uncount offer use: %w", err)
		}
		reopen = append(reopen, u.offerID)
		released++
	}
	if len(reopen) > 0 {
		// Before the commit: a lookup in between may keep "none" for up to
		// productTTL, as another replica's write would.
		db.noSiteOffers.clear()
	}
	for _, id := range reopen {
		if err := offer.Statuses.Check(offer.StatusConsumed, offer.StatusOpen); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE offers SET status = $1, updated_at = $2
			WHERE id = $3 AND status = $4 AND (max_global_applications = 0
				OR max_global_applications > (SELECT num_applications FROM offer_usage WHERE offer_id = $3))`,
			offer.StatusOpen, db.ts(now), id, offer.StatusConsumed); err != nil {
			return 0, fmt.Errorf("re-open offer: %w", err)
		}
	}
	return released, nil
}
