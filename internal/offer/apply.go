package offer

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"fulfill/internal/basket"
	"fulfill/internal/money"
)

// Basket is what Apply prices: lines in one currency.
type Basket struct {
	Currency string
	Lines    []Line
}

// FromBasket describes a built basket for Apply, line for line.
func FromBasket(b basket.Basket) Basket {
	out := Basket{Currency: b.Currency, Lines: make([]Line, len(b.Lines))}
	for i, l := range b.Lines {
		out.Lines[i] = LineOf(l.Product, l.Quantity)
	}
	return out
}

// Reason says why an offer or the voucher did not apply.
type Reason string

// Reasons. Words carry the sentence a learner is shown.
const (
	// ReasonSuspended: the offer is Suspended.
	ReasonSuspended Reason = "suspended"
	// ReasonConsumed: the offer is Consumed, or its total limit is reached.
	ReasonConsumed Reason = "consumed"
	// ReasonNotStarted: the offer or voucher starts later.
	ReasonNotStarted Reason = "not_started"
	// ReasonEnded: the offer or voucher has ended.
	ReasonEnded Reason = "ended"
	// ReasonCurrency: the offer's amounts are in another currency.
	ReasonCurrency Reason = "currency"
	// ReasonEmailDomain: the user's e-mail is not in the offer's domains
	// (or the user is anonymous).
	ReasonEmailDomain Reason = "email_domain"
	// ReasonUserLimit: the user has used the offer as often as allowed.
	ReasonUserLimit Reason = "user_limit"
	// ReasonSignInRequired: a voucher is never applied for an anonymous
	// visitor (Otto's calculate ignores the code).
	ReasonSignInRequired Reason = "sign_in_required"
	// ReasonUsed: a single-use voucher was used.
	ReasonUsed Reason = "used"
	// ReasonUsedByUser: a once-per-customer voucher was used by this user.
	ReasonUsedByUser Reason = "used_by_user"
	// ReasonVoucherOnly: a voucher offer was given without its voucher.
	ReasonVoucherOnly Reason = "voucher_only"
	// ReasonCondition: the basket does not meet the offer's condition.
	ReasonCondition Reason = "condition"
	// ReasonTaken: the items in range carry other discounts that this
	// offer cannot combine with (exclusivity).
	ReasonTaken Reason = "taken"
	// ReasonNoDiscount: the offer's condition is met but it takes nothing
	// off (free items, a fixed price above the items' price); for the
	// voucher: none of its offers took anything off.
	ReasonNoDiscount Reason = "no_discount"
)

// Refusal is an offer or the voucher that did not apply, and why.
type Refusal struct {
	OfferID int64
	// VoucherID and Code name the voucher, for the voucher and its offers.
	VoucherID int64
	Code      string
	Reason    Reason
	// Words say it to a learner, as Otto does.
	Words string
}

// LineDiscount is one offer's discount on one line.
type LineDiscount struct {
	OfferID   int64
	VoucherID int64 // 0 for a site offer
	// Amount is in minor units; Items is how many of the line's items it
	// discounted.
	Amount int64
	Items  int
}

// LineResult is one line priced.
type LineResult struct {
	Line
	// Before is UnitPrice × Quantity; After is Before less Discount, never
	// below zero.
	Before, Discount, After int64
	// Discounts are the offers that took something off, in the order applied.
	Discounts []LineDiscount
}

// Application is one offer that took something off the basket.
type Application struct {
	OfferID     int64
	OfferName   string
	VoucherID   int64
	VoucherCode string
	// Applications is how often the benefit was applied (Oscar's
	// frequency): what the offer's usage limits count.
	Applications int
	// Discount is the total taken off, in minor units.
	Discount int64
}

// Result is a priced basket: what an order placed from it records.
type Result struct {
	Currency string
	// Lines are the basket's lines, in the basket's order.
	Lines []LineResult
	// Before and After are the basket's totals without and with discounts.
	Before, After int64
	// Applications are the offers applied, in the order applied.
	Applications []Application
	// Voucher is the voucher given, when one of its offers took something
	// off; nil otherwise.
	Voucher *Voucher
	// Refusals are the offers and the voucher that did not apply.
	Refusals []Refusal
	// NextChange is the first instant after now at which an offer or the
	// voucher given starts or ends, after which the same basket may be
	// priced differently; zero if none.
	NextChange time.Time
}

// Discount is the total taken off.
func (r Result) Discount() int64 { return r.Before - r.After }

// Redemption is what placing an order priced by Apply must record, under
// lock and in the order's transaction: the voucher's use, and each
// offer's applications.
type Redemption struct {
	OrderNumber string
	Username    string
	// VoucherID is 0 when no voucher applied.
	VoucherID int64
	Offers    []OfferUse
}

// OfferUse is the applications of one offer in one order.
type OfferUse struct {
	OfferID      int64
	Applications int
	Discount     int64
}

// Redemption is what the order numbered orderNumber, placed for username
// from r, must record.
func (r Result) Redemption(orderNumber, username string) Redemption {
	red := Redemption{OrderNumber: orderNumber, Username: username}
	if r.Voucher != nil {
		red.VoucherID = r.Voucher.ID
	}
	for _, a := range r.Applications {
		red.Offers = append(red.Offers, OfferUse{OfferID: a.OfferID, Applications: a.Applications, Discount: a.Discount})
	}
	return red
}

// maxApplications is Oscar's ceiling on applications of one offer in one
// basket.
const maxApplications = 10000

// Apply prices b for user with the offers in force and at most one
// voucher, as Oscar's Applicator does. Offers of type Voucher are applied
// only as offers of v. Offers (site and voucher ones together) apply in
// descending priority, ties by ascending id; each is applied repeatedly
// while it takes something off, up to its limits. An exclusive offer
// discounts only items no other offer discounted; non-exclusive offers
// combine on the same items, but not with an exclusive one. Every amount
// is rounded down to the currency's minor unit, and a line never goes
// below zero. Usage gives the uses recorded so far. Apply does no I/O.
func Apply(b Basket, user User, offers []Offer, v *Voucher, usage Usage, now time.Time) Result {
	res := Result{Currency: b.Currency, Lines: make([]LineResult, len(b.Lines))}
	st := &state{lines: make([]*lineState, len(b.Lines)), exclusive: map[int64]bool{}}
	for i, l := range b.Lines {
		before := mulSat(l.UnitPrice, int64(max(l.Quantity, 0)))
		st.lines[i] = &lineState{Line: l, before: before, consumed: map[int64]int{}}
	}
	type candidate struct {
		o Offer
		v *Voucher
	}
	var cands []candidate
	for _, o := range offers {
		res.noteTimes(o.Start, o.End, now)
		if o.Type == TypeVoucher {
			res.refuse(o, nil, ReasonVoucherOnly, fmt.Sprintf("The offer %s needs its coupon code.", o.Name))
			continue
		}
		cands = append(cands, candidate{o: o})
	}
	voucherOK := false
	if v != nil {
		res.noteTimes(&v.Start, &v.End, now)
		if reason, words := voucherRefusal(*v, user, usage, now); reason != "" {
			res.Refusals = append(res.Refusals, Refusal{VoucherID: v.ID, Code: v.Code, Reason: reason, Words: words})
		} else {
			voucherOK = true
			for _, o := range v.Offers {
				res.noteTimes(o.Start, o.End, now)
				// An offer given as a site offer too is applied once, as the
				// voucher's.
				cands = slices.DeleteFunc(cands, func(c candidate) bool { return c.v == nil && c.o.ID == o.ID })
				cands = append(cands, candidate{o: o, v: v})
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if a.o.Priority != b.o.Priority {
			return cmp.Compare(b.o.Priority, a.o.Priority)
		}
		return cmp.Compare(a.o.ID, b.o.ID)
	})
	voucherApplied := false
	for _, c := range cands {
		o := c.o
		st.exclusive[o.ID] = o.Exclusive
		if reason, words := offerRefusal(o, b.Currency, user, usage, now); reason != "" {
			res.refuse(o, c.v, reason, words)
			continue
		}
		limit := applicationsLeft(o, user, usage)
		var vid int64
		if c.v != nil {
			vid = c.v.ID
		}
		n, total := 0, int64(0)
		var why Reason
		for n < limit {
			d, reason := st.applyOnce(o, vid)
			if d == 0 {
				why = reason
				break
			}
			n++
			total += d
		}
		if n == 0 {
			if why == "" {
				why = ReasonNoDiscount
			}
			res.refuse(o, c.v, why, refusalWords(why))
			continue
		}
		a := Application{OfferID: o.ID, OfferName: o.Name, VoucherID: vid, Applications: n, Discount: total}
		if c.v != nil {
			a.VoucherCode = c.v.Code
			voucherApplied = true
		}
		res.Applications = append(res.Applications, a)
	}
	if v != nil && voucherOK {
		if voucherApplied {
			vv := *v
			res.Voucher = &vv
		} else {
			res.Refusals = append(res.Refusals, Refusal{VoucherID: v.ID, Code: v.Code, Reason: ReasonNoDiscount,
				Words: fmt.Sprintf("Basket does not qualify for coupon code %s.", v.Code)})
		}
	}
	for i, ls := range st.lines {
		after := max(ls.before-ls.discount, 0)
		res.Lines[i] = LineResult{Line: ls.Line, Before: ls.before, Discount: ls.before - after, After: after, Discounts: ls.discounts}
		res.Before = addSat(res.Before, ls.before)
		res.After = addSat(res.After, after)
	}
	return res
}

// InForce picks the site offers that apply to a basket priced for bundle
// (a program UUID, or ""): the program's offers when the bundle has any,
// otherwise the ordinary site offers (Otto omits those when program
// offers exist). Offers of other types pass through.
func InForce(offers []Offer, bundle string) []Offer {
	program := false
	if bundle != "" {
		for _, o := range offers {
			if o.Type == TypeSite && o.ProgramUUID == bundle {
				program = true
				break
			}
		}
	}
	var out []Offer
	for _, o := range offers {
		switch {
		case o.Type != TypeSite:
			out = append(out, o)
		case program && o.ProgramUUID == bundle:
			out = append(out, o)
		case !program && o.ProgramUUID == "":
			out = append(out, o)
		}
	}
	return out
}

func (r *Result) refuse(o Offer, v *Voucher, reason Reason, words string) {
	f := Refusal{OfferID: o.ID, Reason: reason, Words: words}
	if v != nil {
		f.VoucherID, f.Code = v.ID, v.Code
	}
	r.Refusals = append(r.Refusals, f)
}

func (r *Result) noteTimes(start, end *time.Time, now time.Time) {
	for _, t := range []*time.Time{start, end} {
		if t != nil && t.After(now) && (r.NextChange.IsZero() || t.Before(r.NextChange)) {
			r.NextChange = *t
		}
	}
}

// voucherRefusal is Otto's validate_voucher, in its order.
func voucherRefusal(v Voucher, user User, usage Usage, now time.Time) (Reason, string) {
	switch {
	case !user.SignedIn():
		return ReasonSignInRequired, fmt.Sprintf("Coupon code '%s' is only available to signed-in users.", v.Code)
	case now.After(v.End):
		return ReasonEnded, fmt.Sprintf("Coupon code '%s' has expired.", v.Code)
	case now.Before(v.Start):
		return ReasonNotStarted, fmt.Sprintf("Coupon code '%s' is not active.", v.Code)
	case v.Usage == UsageSingle && usage.VoucherUses > 0:
		return ReasonUsed, fmt.Sprintf("Coupon code '%s' is not available. This coupon has already been used.", v.Code)
	case v.Usage == UsageOncePerCustomer && usage.VoucherUsesByUser > 0:
		return ReasonUsedByUser, fmt.Sprintf("Coupon code '%s' is not available. You have already used this coupon in a previous order.", v.Code)
	}
	return "", ""
}

// offerRefusal says why o cannot apply at all now, or "".
func offerRefusal(o Offer, currency string, user User, usage Usage, now time.Time) (Reason, string) {
	switch {
	case o.Status == StatusSuspended:
		return ReasonSuspended, "This offer is suspended."
	case o.Status != StatusOpen, o.MaxGlobalApplications > 0 && o.NumApplications >= o.MaxGlobalApplications:
		return ReasonConsumed, "This coupon code is no longer available."
	case o.Start != nil && now.Before(*o.Start):
		return ReasonNotStarted, "This offer has not started yet."
	case o.End != nil && !now.Before(*o.End):
		return ReasonEnded, "This offer has ended."
	case o.MoneyValued() && o.Currency != currency:
		return ReasonCurrency, fmt.Sprintf("This offer is in %s; the basket is in %s.", o.Currency, currency)
	case len(o.EmailDomains) > 0 && (!user.SignedIn() || !EmailAllowed(o.EmailDomains, user.Email)):
		return ReasonEmailDomain, "You are not eligible to use this coupon."
	case o.MaxUserApplications > 0 && user.SignedIn() && usage.ByUser[o.ID] >= o.MaxUserApplications:
		return ReasonUserLimit, "You have already used this offer as often as allowed."
	}
	return "", ""
}

func refusalWords(r Reason) string {
	switch r {
	case ReasonCondition:
		return "The basket does not meet the conditions of this offer."
	case ReasonTaken:
		return "The items of this offer already carry another discount."
	}
	return "This offer takes nothing off this basket."
}

// applicationsLeft is Oscar's get_max_applications: the least of 10000,
// the basket cap, what the user and everyone have left.
func applicationsLeft(o Offer, user User, usage Usage) int {
	n := maxApplications
	if o.MaxBasketApplications > 0 {
		n = min(n, o.MaxBasketApplications)
	}
	if o.MaxUserApplications > 0 && user.SignedIn() {
		n = min(n, max(0, o.MaxUserApplications-usage.ByUser[o.ID]))
	}
	if o.MaxGlobalApplications > 0 {
		n = min(n, max(0, o.MaxGlobalApplications-o.NumApplications))
	}
	return n
}

// state is the basket being discounted.
type state struct {
	lines []*lineState
	// exclusive records whether each offer applied so far is exclusive.
	exclusive map[int64]bool
}

type lineState struct {
	Line
	before, discount int64
	// consumed is the items each offer consumed, by offer id.
	consumed  map[int64]int
	discounts []LineDiscount
}

// available is how many of the line's items offer o may still consume
// (Oscar's LineOfferConsumer): an exclusive offer gets nothing on a line a
// non-exclusive offer touched, and otherwise only the items no exclusive
// offer consumed; a non-exclusive offer gets nothing on a line an
// exclusive offer touched, and otherwise the items it has not consumed
// itself.
func (st *state) available(ls *lineState, o Offer) int {
	taken := 0
	for id, n := range ls.consumed {
		if n == 0 || id == o.ID {
			continue
		}
		if st.exclusive[id] != o.Exclusive {
			return 0
		}
		if o.Exclusive {
			taken += n
		}
	}
	return max(0, ls.Quantity-taken-ls.consumed[o.ID])
}

// planned is one line's share of one application.
type planned struct {
	ls       *lineState
	amount   int64
	quantity int
}

// applyOnce applies o's benefit once, if its condition holds, and returns
// the discount (0 and why when it cannot).
func (st *state) applyOnce(o Offer, voucherID int64) (int64, Reason) {
	rng := o.Condition.Range
	// The lines in range with items left for o, cheapest first.
	var cands []*lineState
	inRange, priced := false, false
	for _, ls := range st.lines {
		if !rng.Contains(ls.Line) || ls.Quantity <= 0 {
			continue
		}
		inRange = true
		if ls.UnitPrice > 0 {
			priced = true
		}
		if ls.UnitPrice > 0 && st.available(ls, o) > 0 {
			cands = append(cands, ls)
		}
	}
	slices.SortStableFunc(cands, func(a, b *lineState) int { return cmp64(a.UnitPrice, b.UnitPrice) })
	if !st.satisfied(o) {
		if inRange && priced && len(cands) == 0 {
			return 0, ReasonTaken
		}
		return 0, ReasonCondition
	}
	if len(cands) == 0 {
		if priced {
			return 0, ReasonTaken
		}
		return 0, ReasonNoDiscount
	}
	var plan []planned
	switch o.Benefit.Type {
	case BenefitPercentage:
		plan = st.percentage(o, cands)
	case BenefitAbsolute:
		plan = st.absolute(o, cands)
	case BenefitFixedPrice:
		plan = st.fixedPrice(o, cands)
	}
	var total int64
	for i := range plan {
		p := &plan[i]
		p.amount = min(p.amount, p.ls.before-p.ls.discount) // never below zero
		total += p.amount
	}
	if total <= 0 {
		return 0, ReasonNoDiscount
	}
	affected := 0
	for _, p := range plan {
		p.ls.discount += p.amount
		p.ls.consumed[o.ID] += p.quantity
		affected += p.quantity
		p.ls.addDiscount(o.ID, voucherID, p.amount, p.quantity)
	}
	st.consumeCondition(o, plan, affected)
	return total, ""
}

func (ls *lineState) addDiscount(offerID, voucherID, amount int64, items int) {
	if amount <= 0 {
		return
	}
	for i := range ls.discounts {
		if ls.discounts[i].OfferID == offerID {
			ls.discounts[i].Amount += amount
			ls.discounts[i].Items += items
			return
		}
	}
	ls.discounts = append(ls.discounts, LineDiscount{OfferID: offerID, VoucherID: voucherID, Amount: amount, Items: items})
}

// satisfied is the condition's is_satisfied over the items o may still
// consume.
func (st *state) satisfied(o Offer) bool {
	c := o.Condition
	var count, value int64
	seen := map[string]bool{}
	for _, ls := range st.lines {
		if !c.Range.Contains(ls.Line) {
			continue
		}
		n := st.available(ls, o)
		if n <= 0 {
			continue
		}
		count += int64(n)
		value = addSat(value, mulSat(ls.UnitPrice, int64(n)))
		seen[ls.SKU] = true
	}
	switch c.Type {
	case ConditionCount:
		return count >= c.Value
	case ConditionValue:
		return count > 0 && value >= c.Value
	case ConditionCoverage:
		return int64(len(seen)) >= c.Value
	}
	return false
}

func (o Offer) maxAffected() int {
	if o.Benefit.MaxAffectedItems > 0 {
		return o.Benefit.MaxAffectedItems
	}
	return maxApplications
}

// percentage takes Value basis points off each affected item, cheapest
// first, each line's share rounded down.
func (st *state) percentage(o Offer, cands []*lineState) []planned {
	limit, affected := o.maxAffected(), 0
	var plan []planned
	for _, ls := range cands {
		if affected >= limit {
			break
		}
		q := min(st.available(ls, o), limit-affected)
		plan = append(plan, planned{ls: ls, quantity: q, amount: mulDiv(mulSat(ls.UnitPrice, int64(q)), o.Benefit.Value, 10000)})
		affected += q
	}
	return plan
}

// absolute takes min(Value, the affected items' price) off the affected
// items, split in proportion to their prices; the last line takes the
// rounding remainder.
func (st *state) absolute(o Offer, cands []*lineState) []planned {
	limit, affected := o.maxAffected(), 0
	var plan []planned
	var worth int64
	for _, ls := range cands {
		if affected >= limit {
			break
		}
		q := min(st.available(ls, o), limit-affected)
		plan = append(plan, planned{ls: ls, quantity: q})
		affected += q
		worth = addSat(worth, mulSat(ls.UnitPrice, int64(q)))
	}
	split(plan, min(o.Benefit.Value, worth), worth)
	return plan
}

// fixedPrice makes the condition's items (Count: that many items,
// Coverage: one item of each product) cost Value together; the excess is
// split in proportion to price.
func (st *state) fixedPrice(o Offer, cands []*lineState) []planned {
	permitted, affected := int(min(o.Condition.Value, maxApplications)), 0
	var plan []planned
	var worth int64
	for _, ls := range cands {
		q := 1
		if o.Condition.Type != ConditionCoverage {
			q = min(st.available(ls, o), permitted-affected)
		}
		plan = append(plan, planned{ls: ls, quantity: q})
		affected += q
		worth = addSat(worth, mulSat(ls.UnitPrice, int64(q)))
		if affected >= permitted {
			break
		}
	}
	split(plan, max(worth-o.Benefit.Value, 0), worth)
	return plan
}

// split shares discount among plan in proportion to each line's worth,
// rounded down; the last line takes the remainder.
func split(plan []planned, discount, worth int64) {
	if discount <= 0 || worth <= 0 {
		return
	}
	var given int64
	for i := range plan {
		p := &plan[i]
		if i == len(plan)-1 {
			p.amount = discount - given
			break
		}
		p.amount = mulDiv(discount, mulSat(p.ls.UnitPrice, int64(p.quantity)), worth)
		given += p.amount
	}
}

// consumeCondition makes the condition consume, besides the items the
// benefit affected, what it needs to be met once (Oscar's consume_items),
// so that the next application needs items of its own: Count consumes
// Value items, Coverage one item of Value products, Value items worth
// Value, the most expensive first.
func (st *state) consumeCondition(o Offer, plan []planned, affected int) {
	c := o.Condition
	var rest []*lineState
	for _, ls := range st.lines {
		if c.Range.Contains(ls.Line) && ls.UnitPrice > 0 && st.available(ls, o) > 0 {
			rest = append(rest, ls)
		}
	}
	slices.SortStableFunc(rest, func(a, b *lineState) int { return cmp64(b.UnitPrice, a.UnitPrice) })
	take := func(ls *lineState, n int) { ls.consumed[o.ID] += n }
	switch c.Type {
	case ConditionCount:
		need := c.Value - int64(affected)
		for _, ls := range rest {
			if need <= 0 {
				break
			}
			n := int(min(int64(st.available(ls, o)), need))
			take(ls, n)
			need -= int64(n)
		}
	case ConditionCoverage:
		covered := map[string]bool{}
		for _, p := range plan {
			covered[p.ls.SKU] = true
		}
		for _, ls := range rest {
			if int64(len(covered)) >= c.Value {
				break
			}
			if !covered[ls.SKU] {
				take(ls, 1)
				covered[ls.SKU] = true
			}
		}
	case ConditionValue:
		var worth int64
		for _, p := range plan {
			worth = addSat(worth, mulSat(p.ls.UnitPrice, int64(p.quantity)))
		}
		for _, ls := range rest {
			for worth < c.Value && st.available(ls, o) > 0 {
				take(ls, 1)
				worth = addSat(worth, ls.UnitPrice)
			}
		}
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mulDiv is ⌊a × b / c⌋ for non-negative a, b and positive c, without
// overflow in between (rounding down to the minor unit); it saturates
// when the result does not fit.
func mulDiv(a, b, c int64) int64 {
	if a <= 0 || b <= 0 || c <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return 1<<63 - 1
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(q)
}

// mulSat and addSat are money's checked arithmetic, saturating instead of
// failing: a basket built by basket.BuildItems never comes near the bound.
func mulSat(a, b int64) int64 {
	if a < 0 || b < 0 {
		return 0
	}
	v, err := money.Mul(a, int(b))
	if err != nil {
		return 1<<63 - 1
	}
	return v
}

func addSat(a, b int64) int64 {
	v, err := money.Add(a, b)
	if err != nil {
		return 1<<63 - 1
	}
	return v
}
