package offer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/basket"
	"fulfill/internal/catalog"
	"fulfill/internal/money"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func seat(sku string, price int64) Line {
	return Line{SKU: sku, CourseKey: "course-v1:edX+" + sku + "+1T", Class: catalog.ClassSeat, SeatType: "verified", UnitPrice: price, Quantity: 1}
}

func usdBasket(lines ...Line) Basket { return Basket{Currency: "USD", Lines: lines} }

var learner = User{Username: "ann", Email: "ann@example.com"}

// pct is a site offer of p percent (basis points) over everything.
func pct(id int64, bp int64) Offer {
	return Offer{ID: id, Name: "site", Type: TypeSite, Status: StatusOpen, Exclusive: true,
		Condition: Condition{Type: ConditionCount, Range: Range{All: true}, Value: 1},
		Benefit:   Benefit{Type: BenefitPercentage, Value: bp}}
}

func abs(id int64, minor int64) Offer {
	o := pct(id, 0)
	o.Benefit = Benefit{Type: BenefitAbsolute, Value: minor}
	o.Currency = "USD"
	return o
}

func with(o Offer, f func(*Offer)) Offer { f(&o); return o }

func ptr(t time.Time) *time.Time { return &t }

func lineDiscounts(r Result) []int64 {
	out := make([]int64, len(r.Lines))
	for i, l := range r.Lines {
		out[i] = l.Discount
	}
	return out
}

func reasons(r Result) []Reason {
	var out []Reason
	for _, f := range r.Refusals {
		out = append(out, f.Reason)
	}
	return out
}

// TestApplyBenefits covers each benefit, rounding and the zero floor.
func TestApplyBenefits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		basket  Basket
		offer   Offer
		want    []int64 // discount per line
		reasons []Reason
	}{
		{name: "percentage", basket: usdBasket(seat("A", 10000)), offer: pct(1, 1000), want: []int64{1000}},
		{name: "33% of 0.10 rounds down to 0.03", basket: usdBasket(seat("A", 10)), offer: pct(1, 3300), want: []int64{3}},
		{name: "12.5% of 9.99 rounds down", basket: usdBasket(seat("A", 999)), offer: pct(1, 1250), want: []int64{124}},
		{name: "1% of 0.01 is nothing", basket: usdBasket(seat("A", 1)), offer: pct(1, 100), want: []int64{0},
			reasons: []Reason{ReasonNoDiscount}},
		{name: "JPY has no minor unit", basket: Basket{Currency: "JPY", Lines: []Line{seat("A", 10)}}, offer: pct(1, 3300),
			want: []int64{3}},
		{name: "100% makes it free", basket: usdBasket(seat("A", 4900), seat("B", 100)), offer: pct(1, 10000),
			want: []int64{4900, 100}},
		{name: "percentage on several lines", basket: usdBasket(seat("A", 1000), seat("B", 333)), offer: pct(1, 5000),
			want: []int64{500, 166}},
		{name: "absolute split in proportion", basket: usdBasket(seat("A", 10000), seat("B", 5000)), offer: abs(1, 3000),
			want: []int64{2000, 1000}},
		{name: "absolute remainder goes to the last (dearest) line", basket: usdBasket(seat("A", 100), seat("B", 100), seat("C", 100)),
			offer: abs(1, 10), want: []int64{3, 3, 4}},
		{name: "absolute never below zero", basket: usdBasket(seat("A", 500)), offer: abs(1, 10000), want: []int64{500}},
		{name: "absolute with one affected item takes the cheapest", basket: usdBasket(seat("A", 5000), seat("B", 2000)),
			offer: with(abs(1, 1000), func(o *Offer) { o.Benefit.MaxAffectedItems = 1; o.MaxBasketApplications = 1 }),
			want:  []int64{0, 1000}},
		{name: "fixed price of two items", basket: usdBasket(seat("A", 4000), seat("B", 4000)),
			offer: with(pct(1, 0), func(o *Offer) {
				o.Condition.Value = 2
				o.Benefit = Benefit{Type: BenefitFixedPrice, Value: 5000}
				o.Currency = "USD"
			}), want: []int64{1500, 1500}},
		{name: "fixed price above the items' price takes nothing", basket: usdBasket(seat("A", 1000)),
			offer: with(pct(1, 0), func(o *Offer) { o.Benefit = Benefit{Type: BenefitFixedPrice, Value: 5000}; o.Currency = "USD" }),
			want:  []int64{0}, reasons: []Reason{ReasonNoDiscount}},
		{name: "fixed price over coverage takes one of each", basket: usdBasket(seat("A", 3000), seat("B", 7000)),
			offer: with(pct(1, 0), func(o *Offer) {
				o.Condition = Condition{Type: ConditionCoverage, Range: Range{All: true}, Value: 2}
				o.Benefit = Benefit{Type: BenefitFixedPrice, Value: 5000}
				o.Currency = "USD"
			}), want: []int64{1500, 3500}},
		{name: "free lines are not discounted", basket: usdBasket(seat("A", 0)), offer: pct(1, 1000), want: []int64{0},
			reasons: []Reason{ReasonNoDiscount}},
		{name: "currency mismatch", basket: Basket{Currency: "EUR", Lines: []Line{seat("A", 1000)}}, offer: abs(1, 100),
			want: []int64{0}, reasons: []Reason{ReasonCurrency}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Apply(tc.basket, learner, []Offer{tc.offer}, nil, Usage{}, now)
			require.Equal(t, tc.want, lineDiscounts(r))
			require.Equal(t, tc.reasons, reasons(r))
			var sum int64
			for _, l := range r.Lines {
				require.GreaterOrEqual(t, l.After, int64(0))
				require.Equal(t, l.Before-l.Discount, l.After)
				sum += l.Discount
			}
			require.Equal(t, sum, r.Before-r.After)
		})
	}
}

// TestApplyConditions covers Count, Value and Coverage over a range.
func TestApplyConditions(t *testing.T) {
	t.Parallel()
	b := usdBasket(seat("A", 6000), seat("B", 3000), Line{SKU: "E", Class: catalog.ClassCourseEntitlement, UnitPrice: 2000, Quantity: 1})
	seats := Range{Classes: []catalog.Class{catalog.ClassSeat}}
	for _, tc := range []struct {
		name string
		cond Condition
		ok   bool
	}{
		{"count met", Condition{Type: ConditionCount, Range: seats, Value: 2}, true},
		{"count not met", Condition{Type: ConditionCount, Range: seats, Value: 3}, false},
		{"value met", Condition{Type: ConditionValue, Range: seats, Value: 9000}, true},
		{"value not met", Condition{Type: ConditionValue, Range: seats, Value: 9001}, false},
		{"coverage met", Condition{Type: ConditionCoverage, Range: Range{SKUs: []string{"A", "E"}}, Value: 2}, true},
		{"coverage not met", Condition{Type: ConditionCoverage, Range: Range{SKUs: []string{"A", "X"}}, Value: 2}, false},
		{"course key range", Condition{Type: ConditionCount, Range: Range{CourseKeys: []string{"course-v1:edX+B+1T"}}, Value: 1}, true},
		{"seat type narrows", Condition{Type: ConditionCount, Range: Range{All: true, SeatTypes: []string{"professional"}}, Value: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := pct(1, 1000)
			o.Condition = tc.cond
			o.Currency = "USD"
			r := Apply(b, learner, []Offer{o}, nil, Usage{}, now)
			if tc.ok {
				require.Len(t, r.Applications, 1)
				require.Positive(t, r.Discount())
			} else {
				require.Equal(t, []Reason{ReasonCondition}, reasons(r))
				require.Zero(t, r.Discount())
			}
		})
	}
	t.Run("the benefit takes only items in range", func(t *testing.T) {
		t.Parallel()
		o := pct(1, 1000)
		o.Condition.Range = seats
		r := Apply(b, learner, []Offer{o}, nil, Usage{}, now)
		require.Equal(t, []int64{600, 300, 0}, lineDiscounts(r))
	})
	t.Run("a count condition consumes its items", func(t *testing.T) {
		t.Parallel()
		// Buy two, get 50 % off one: four seats give two applications.
		o := pct(1, 5000)
		o.Condition = Condition{Type: ConditionCount, Range: Range{All: true}, Value: 2}
		o.Benefit.MaxAffectedItems = 1
		r := Apply(usdBasket(seat("A", 1000), seat("B", 2000), seat("C", 3000), seat("D", 4000)), learner, []Offer{o}, nil, Usage{}, now)
		require.Equal(t, 2, r.Applications[0].Applications)
		require.Equal(t, []int64{500, 1000, 0, 0}, lineDiscounts(r))
	})
}

// TestApplyExclusivityAndPriority covers Otto's combination rules.
func TestApplyExclusivityAndPriority(t *testing.T) {
	t.Parallel()
	b := usdBasket(seat("A", 10000))
	t.Run("one exclusive discount per line: the higher priority wins", func(t *testing.T) {
		t.Parallel()
		low, high := pct(1, 5000), pct(2, 1000)
		high.Priority = 20
		r := Apply(b, learner, []Offer{low, high}, nil, Usage{}, now)
		require.Equal(t, []int64{1000}, lineDiscounts(r))
		require.Equal(t, int64(2), r.Applications[0].OfferID)
		require.Equal(t, []Refusal{{OfferID: 1, Reason: ReasonTaken, Words: "The items of this offer already carry another discount."}}, r.Refusals)
	})
	t.Run("a tie goes to the lower id", func(t *testing.T) {
		t.Parallel()
		r := Apply(b, learner, []Offer{pct(9, 5000), pct(3, 1000)}, nil, Usage{}, now)
		require.Equal(t, int64(3), r.Applications[0].OfferID)
		require.Equal(t, []int64{1000}, lineDiscounts(r))
	})
	t.Run("non-exclusive offers combine", func(t *testing.T) {
		t.Parallel()
		a, c := pct(1, 1000), pct(2, 2000)
		a.Exclusive, c.Exclusive = false, false
		r := Apply(b, learner, []Offer{a, c}, nil, Usage{}, now)
		require.Equal(t, []int64{3000}, lineDiscounts(r))
		require.Len(t, r.Applications, 2)
		require.Len(t, r.Lines[0].Discounts, 2)
	})
	t.Run("combined discounts never go below zero", func(t *testing.T) {
		t.Parallel()
		a, c := pct(1, 6000), pct(2, 6000)
		a.Exclusive, c.Exclusive = false, false
		r := Apply(b, learner, []Offer{a, c}, nil, Usage{}, now)
		require.Equal(t, int64(0), r.After)
		require.Equal(t, int64(6000), r.Lines[0].Discounts[0].Amount)
		require.Equal(t, int64(4000), r.Lines[0].Discounts[1].Amount)
	})
	t.Run("an exclusive offer skips a line a non-exclusive one discounted", func(t *testing.T) {
		t.Parallel()
		ne, ex := pct(1, 1000), pct(2, 5000)
		ne.Exclusive, ne.Priority = false, 5
		r := Apply(b, learner, []Offer{ex, ne}, nil, Usage{}, now)
		require.Equal(t, []int64{1000}, lineDiscounts(r))
		require.Equal(t, []Reason{ReasonTaken}, reasons(r))
	})
	t.Run("a non-exclusive offer skips a line an exclusive one discounted", func(t *testing.T) {
		t.Parallel()
		ne, ex := pct(1, 1000), pct(2, 5000)
		ne.Exclusive, ex.Priority = false, 5
		r := Apply(b, learner, []Offer{ne, ex}, nil, Usage{}, now)
		require.Equal(t, []int64{5000}, lineDiscounts(r))
		require.Equal(t, []Reason{ReasonTaken}, reasons(r))
	})
	t.Run("exclusive offers share a line's items", func(t *testing.T) {
		t.Parallel()
		codes := Basket{Currency: "USD", Lines: []Line{{SKU: "EC", Class: catalog.ClassEnrollmentCode, UnitPrice: 1000, Quantity: 3}}}
		one := pct(1, 10000)
		one.Priority, one.Benefit.MaxAffectedItems, one.MaxBasketApplications = 20, 1, 1
		r := Apply(codes, learner, []Offer{pct(2, 1000), one}, nil, Usage{}, now)
		require.Equal(t, int64(1000+200), r.Discount(), "one item free, 10%% off the other two")
		require.Equal(t, []LineDiscount{{OfferID: 1, Amount: 1000, Items: 1}, {OfferID: 2, Amount: 200, Items: 2}}, r.Lines[0].Discounts)
	})
	t.Run("a voucher (priority 20) goes before site offers", func(t *testing.T) {
		t.Parallel()
		v := voucher(UsageMulti, with(pct(5, 2000), func(o *Offer) { o.Type, o.Priority = TypeVoucher, 20 }))
		r := Apply(b, learner, []Offer{pct(1, 5000)}, &v, Usage{}, now)
		require.Equal(t, []int64{2000}, lineDiscounts(r))
		require.NotNil(t, r.Voucher)
		require.Equal(t, "SAVE20", r.Applications[0].VoucherCode)
		require.Equal(t, v.ID, r.Lines[0].Discounts[0].VoucherID)
	})
}

func voucher(u VoucherUsage, offers ...Offer) Voucher {
	return Voucher{ID: 7, Code: "SAVE20", Usage: u, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Offers: offers}
}

// TestApplyLimits covers the basket, user and global caps and statuses.
func TestApplyLimits(t *testing.T) {
	t.Parallel()
	codes := Basket{Currency: "USD", Lines: []Line{{SKU: "EC", Class: catalog.ClassEnrollmentCode, UnitPrice: 1000, Quantity: 5}}}
	perItem := with(pct(1, 1000), func(o *Offer) { o.Benefit.MaxAffectedItems = 1 })
	for _, tc := range []struct {
		name   string
		offer  Offer
		usage  Usage
		user   User
		apps   int
		reason Reason
	}{
		{name: "one application per item", offer: perItem, apps: 5},
		{name: "basket cap", offer: with(perItem, func(o *Offer) { o.MaxBasketApplications = 2 }), apps: 2},
		{name: "global remaining", offer: with(perItem, func(o *Offer) { o.MaxGlobalApplications, o.NumApplications = 10, 7 }), apps: 3},
		{name: "global reached", offer: with(perItem, func(o *Offer) { o.MaxGlobalApplications, o.NumApplications = 10, 10 }),
			reason: ReasonConsumed},
		{name: "user remaining", offer: with(perItem, func(o *Offer) { o.MaxUserApplications = 3 }), usage: Usage{ByUser: map[int64]int{1: 1}}, apps: 2},
		{name: "user reached", offer: with(perItem, func(o *Offer) { o.MaxUserApplications = 3 }), usage: Usage{ByUser: map[int64]int{1: 3}},
			reason: ReasonUserLimit},
		{name: "user cap does not bind anonymous", offer: with(perItem, func(o *Offer) { o.MaxUserApplications = 1 }), user: User{}, apps: 5},
		{name: "suspended", offer: with(perItem, func(o *Offer) { o.Status = StatusSuspended }), reason: ReasonSuspended},
		{name: "consumed", offer: with(perItem, func(o *Offer) { o.Status = StatusConsumed }), reason: ReasonConsumed},
		{name: "not started", offer: with(perItem, func(o *Offer) { o.Start = ptr(now.Add(time.Minute)) }), reason: ReasonNotStarted},
		{name: "ended", offer: with(perItem, func(o *Offer) { o.End = ptr(now) }), reason: ReasonEnded},
		{name: "within its dates", offer: with(perItem, func(o *Offer) { o.Start, o.End = ptr(now), ptr(now.Add(time.Second)) }), apps: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := learner
			if tc.name == "user cap does not bind anonymous" {
				user = tc.user
			}
			r := Apply(codes, user, []Offer{tc.offer}, nil, tc.usage, now)
			if tc.reason != "" {
				require.Equal(t, []Reason{tc.reason}, reasons(r))
				require.Empty(t, r.Applications)
				return
			}
			require.Empty(t, r.Refusals)
			require.Equal(t, tc.apps, r.Applications[0].Applications)
			require.Equal(t, int64(100*tc.apps), r.Discount())
		})
	}
}

// TestApplyVoucher covers usage modes, dates, e-mail domains, anonymous
// visitors and a code that takes nothing off.
func TestApplyVoucher(t *testing.T) {
	t.Parallel()
	b := usdBasket(seat("A", 10000))
	vo := with(pct(5, 2500), func(o *Offer) { o.Type, o.Priority, o.Benefit.MaxAffectedItems = TypeVoucher, 20, 1 })
	for _, tc := range []struct {
		name   string
		v      Voucher
		usage  Usage
		user   User
		reason Reason
		words  string
	}{
		{name: "multi-use after many uses", v: voucher(UsageMulti, vo), usage: Usage{VoucherUses: 50, VoucherUsesByUser: 3}},
		{name: "single use unused", v: voucher(UsageSingle, vo)},
		{name: "single use used", v: voucher(UsageSingle, vo), usage: Usage{VoucherUses: 1}, reason: ReasonUsed,
			words: "Coupon code 'SAVE20' is not available. This coupon has already been used."},
		{name: "once per customer used by another", v: voucher(UsageOncePerCustomer, vo), usage: Usage{VoucherUses: 4}},
		{name: "once per customer used by this user", v: voucher(UsageOncePerCustomer, vo), usage: Usage{VoucherUses: 4, VoucherUsesByUser: 1},
			reason: ReasonUsedByUser},
		{name: "anonymous", v: voucher(UsageMulti, vo), user: User{}, reason: ReasonSignInRequired},
		{name: "expired", v: with2(voucher(UsageMulti, vo), func(v *Voucher) { v.End = now.Add(-time.Second) }), reason: ReasonEnded,
			words: "Coupon code 'SAVE20' has expired."},
		{name: "ends now: still valid", v: with2(voucher(UsageMulti, vo), func(v *Voucher) { v.End = now })},
		{name: "not yet active", v: with2(voucher(UsageMulti, vo), func(v *Voucher) { v.Start = now.Add(time.Second) }), reason: ReasonNotStarted,
			words: "Coupon code 'SAVE20' is not active."},
		{name: "e-mail domain matches", v: voucher(UsageMulti, with(vo, func(o *Offer) { o.EmailDomains = []string{"example.com"} }))},
		{name: "e-mail domain refused", v: voucher(UsageMulti, with(vo, func(o *Offer) { o.EmailDomains = []string{"example.org"} })),
			reason: ReasonEmailDomain, words: "You are not eligible to use this coupon."},
		{name: "nothing in range", v: voucher(UsageMulti, with(vo, func(o *Offer) { o.Condition.Range = Range{SKUs: []string{"Z"}} })),
			reason: ReasonCondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := learner
			if tc.name == "anonymous" {
				user = tc.user
			}
			r := Apply(b, user, nil, &tc.v, tc.usage, now)
			if tc.reason == "" {
				require.Empty(t, r.Refusals)
				require.NotNil(t, r.Voucher)
				require.Equal(t, int64(2500), r.Discount())
				return
			}
			require.Nil(t, r.Voucher)
			require.Zero(t, r.Discount())
			require.Equal(t, tc.reason, r.Refusals[0].Reason)
			require.Equal(t, "SAVE20", r.Refusals[0].Code)
			if tc.words != "" {
				require.Equal(t, tc.words, r.Refusals[0].Words)
			}
			if tc.reason == ReasonCondition {
				require.Equal(t, ReasonNoDiscount, r.Refusals[1].Reason)
				require.Equal(t, "Basket does not qualify for coupon code SAVE20.", r.Refusals[1].Words)
			}
		})
	}
	t.Run("a voucher offer without its voucher", func(t *testing.T) {
		t.Parallel()
		r := Apply(b, learner, []Offer{vo}, nil, Usage{}, now)
		require.Equal(t, []Reason{ReasonVoucherOnly}, reasons(r))
	})
	t.Run("redemption records the voucher and each offer", func(t *testing.T) {
		t.Parallel()
		v := voucher(UsageSingle, vo)
		site := pct(1, 1000)
		site.Exclusive = false
		r := Apply(usdBasket(seat("A", 10000), seat("B", 2000)), learner, []Offer{site}, &v, Usage{}, now)
		// The voucher's exclusive offer applies once per item, cheapest
		// first; the non-exclusive site offer finds no item left.
		require.Equal(t, []int64{2500, 500}, lineDiscounts(r))
		require.Equal(t, []Reason{ReasonTaken}, reasons(r))
		require.Equal(t, Redemption{OrderNumber: "EDX-100001", Username: "ann", VoucherID: 7,
			Offers: []OfferUse{{OfferID: 5, Applications: 2, Discount: 3000}}}, r.Redemption("EDX-100001", "ann"))
	})
}

func with2(v Voucher, f func(*Voucher)) Voucher { f(&v); return v }

// TestApplyNextChange reports when the answer may change.
func TestApplyNextChange(t *testing.T) {
	t.Parallel()
	later := pct(2, 1000)
	later.Start = ptr(now.Add(2 * time.Hour))
	ending := pct(1, 500)
	ending.End = ptr(now.Add(time.Hour))
	r := Apply(usdBasket(seat("A", 100)), User{}, []Offer{later, ending}, nil, Usage{}, now)
	require.Equal(t, now.Add(time.Hour), r.NextChange)
}

func TestInForce(t *testing.T) {
	t.Parallel()
	site, prog := pct(1, 100), pct(2, 200)
	prog.ProgramUUID = "p-1"
	require.Equal(t, []Offer{site}, InForce([]Offer{site, prog}, ""))
	require.Equal(t, []Offer{prog}, InForce([]Offer{site, prog}, "p-1"))
	require.Equal(t, []Offer{site}, InForce([]Offer{site, prog}, "p-2"))
}

func TestEmailAllowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		domains []string
		email   string
		ok      bool
	}{
		{nil, "a@anything.org", true},
		{[]string{"example.com"}, "a@example.com", true},
		{[]string{"example.com"}, "a@EXAMPLE.com", true},
		{[]string{"example.com"}, "a@mail.example.com", true},
		{[]string{"example.com"}, "a@badexample.com", false},
		{[]string{"mail.example.com"}, "a@mail.example.com", true},
		{[]string{"mail.example.com"}, "a@example.com", false},
		{[]string{"mail.example.com"}, "a@x.mail.example.com", false},
		{[]string{"example.org", "example.com"}, "a@example.com", true},
		{[]string{"example.com"}, "not-an-email", false},
	} {
		require.Equal(t, tc.ok, EmailAllowed(tc.domains, tc.email), "%v %s", tc.domains, tc.email)
	}
}

func TestFromBasket(t *testing.T) {
	t.Parallel()
	p := catalog.Product{Class: catalog.ClassEnrollmentCode, Attributes: catalog.Attributes{"course_key": "course-v1:a+b+c", "seat_type": "verified"},
		Stock: &catalog.StockRecord{SKU: "EC1", Price: money.Amount{Minor: 4900, Currency: "USD"}}}
	b := FromBasket(basket.Basket{Currency: "USD", Lines: []basket.Line{{Product: p, Quantity: 3}}})
	require.Equal(t, Basket{Currency: "USD", Lines: []Line{{SKU: "EC1", CourseKey: "course-v1:a+b+c", Class: catalog.ClassEnrollmentCode,
		SeatType: "verified", UnitPrice: 4900, Quantity: 3}}}, b)
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	require.NoError(t, Statuses.Check(StatusOpen, StatusConsumed))
	require.NoError(t, Statuses.Check(StatusConsumed, StatusOpen))
	require.NoError(t, Statuses.Check(StatusSuspended, StatusOpen))
	require.Error(t, Statuses.Check(StatusSuspended, StatusConsumed))
	require.Error(t, Statuses.Check("Gone", StatusOpen))
}
