package offer

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
	"fulfill/internal/money"
)

func s(v string) *string { return &v }
func n(v int) *int       { return &v }

func spec() CouponSpec {
	start, end := now, now.Add(30*24*time.Hour)
	return CouponSpec{Title: s("Spring"), VoucherType: s("Multi-use"), BenefitType: s("Percentage"), BenefitValue: s("12.5"),
		Start: &start, End: &end, Range: &RangeSpec{SKUs: []string{"A1"}}}
}

func fields(t *testing.T, err error) map[string]string {
	t.Helper()
	var fe *FieldsError
	require.True(t, errors.As(err, &fe), "%v", err)
	require.ErrorIs(t, err, ErrInvalid)
	return fe.Fields
}

func TestCouponBuild(t *testing.T) {
	t.Parallel()
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		var c Coupon
		sp := spec()
		sp.MaxUses, sp.EmailDomains, sp.Code, sp.Category = n(5), s("example.com,mail.example.org"), s(" spring25 "), s("Course Promotion")
		require.NoError(t, sp.Build(&c, true, nil))
		require.Equal(t, "Spring", c.Title)
		require.Equal(t, UsageMulti, c.Usage)
		require.Equal(t, Benefit{Type: BenefitPercentage, Value: 1250, MaxAffectedItems: 1}, c.Offer.Benefit)
		require.Equal(t, Condition{Type: ConditionCount, Value: 1, Range: Range{SKUs: []string{"A1"}}}, c.Offer.Condition)
		require.Equal(t, TypeVoucher, c.Offer.Type)
		require.Equal(t, CouponPriority, c.Offer.Priority)
		require.True(t, c.Offer.Exclusive)
		require.Equal(t, 5, c.Offer.MaxGlobalApplications)
		require.Equal(t, []string{"example.com", "mail.example.org"}, c.Offer.EmailDomains)
		require.Equal(t, []Voucher{{Code: "SPRING25"}}, c.Vouchers)
		require.Equal(t, "Discount code", c.Kind())
		require.Equal(t, "ACTIVE", c.CodeStatus(now))
		require.Equal(t, "EXPIRED", c.CodeStatus(c.End.Add(time.Second)))
	})
	t.Run("absolute in the coupon's currency", func(t *testing.T) {
		t.Parallel()
		var c Coupon
		sp := spec()
		sp.BenefitType, sp.BenefitValue, sp.Currency = s("Absolute"), s("10.50"), s("eur")
		require.NoError(t, sp.Build(&c, true, nil))
		require.Equal(t, int64(1050), c.Offer.Benefit.Value)
		require.Equal(t, "EUR", c.Offer.Currency)
		require.Equal(t, "10.5", FormatBenefit(c.Offer.Benefit, "EUR"))
	})
	for _, tc := range []struct {
		name  string
		edit  func(*CouponSpec)
		field string
	}{
		{"no title", func(c *CouponSpec) { c.Title = nil }, "title"},
		{"benefit type", func(c *CouponSpec) { c.BenefitType = s("Fixed price") }, "benefit_type"},
		{"negative value", func(c *CouponSpec) { c.BenefitValue = s("-1") }, "benefit_value"},
		{"over 100 %", func(c *CouponSpec) { c.BenefitValue = s("100.01") }, "benefit_value"},
		{"voucher type", func(c *CouponSpec) { c.VoucherType = s("Multi-use-per-Customer") }, "voucher_type"},
		{"max_uses on single use", func(c *CouponSpec) { c.VoucherType, c.MaxUses = s("Single use"), n(3) }, "max_uses"},
		{"max_uses not positive", func(c *CouponSpec) { c.MaxUses = n(0) }, "max_uses"},
		{"no start", func(c *CouponSpec) { c.Start = nil }, "start_datetime"},
		{"end before start", func(c *CouponSpec) { e := now.Add(-time.Hour); c.End = &e }, "end_datetime"},
		{"trailing comma", func(c *CouponSpec) { c.EmailDomains = s("example.com,") }, "email_domains"},
		{"bad domain", func(c *CouponSpec) { c.EmailDomains = s("not a domain") }, "email_domains"},
		{"no range", func(c *CouponSpec) { c.Range = &RangeSpec{} }, "stock_record_ids"},
		{"code with quantity", func(c *CouponSpec) { c.Code, c.Quantity = s("ABC"), n(2) }, "code"},
		{"code not alphanumeric", func(c *CouponSpec) { c.Code = s("ABC-1") }, "code"},
		{"enrollment code with a code", func(c *CouponSpec) { c.Code, c.BenefitValue = s("FREE"), s("100") }, "code"},
		{"quantity", func(c *CouponSpec) { c.Quantity = n(MaxQuantity + 1) }, "quantity"},
		{"notify email", func(c *CouponSpec) { c.NotifyEmail = s("nobody") }, "notify_email"},
		{"seat types", func(c *CouponSpec) { c.Range.SeatTypes = []string{"credit", "verified"} }, "course_seat_types"},
		{"unknown stock record", func(c *CouponSpec) { c.Range = &RangeSpec{StockRecordIDs: []int64{99}} }, "stock_record_ids"},
		{"audit seat", func(c *CouponSpec) { c.Range = &RangeSpec{StockRecordIDs: []int64{1}} }, "stock_record_ids"},
		{"enterprise", func(c *CouponSpec) { c.EnterpriseCustomer = true }, "enterprise_customer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := spec()
			tc.edit(&sp)
			audit := map[int64]catalog.Product{1: {Class: catalog.ClassSeat, Attributes: catalog.Attributes{},
				Stock: &catalog.StockRecord{ID: 1, SKU: "AUD", Price: money.Amount{Currency: "USD"}}}}
			var c Coupon
			f := fields(t, sp.Build(&c, true, audit))
			require.Contains(t, f, tc.field)
		})
	}
	t.Run("unknown category is not found", func(t *testing.T) {
		t.Parallel()
		sp := spec()
		sp.Category = s("Nope")
		var c Coupon
		require.ErrorIs(t, sp.Build(&c, true, nil), ErrCategoryNotFound)
	})
	t.Run("update keeps what is not given and refuses fixed fields", func(t *testing.T) {
		t.Parallel()
		var c Coupon
		sp := spec()
		sp.Quantity = n(3)
		require.NoError(t, sp.Build(&c, true, nil))
		c.Vouchers = []Voucher{{Code: "A"}, {Code: "B"}, {Code: "C"}}
		require.NoError(t, CouponSpec{BenefitValue: s("20"), MaxUses: n(9)}.Build(&c, false, nil))
		require.Equal(t, int64(2000), c.Offer.Benefit.Value)
		require.Equal(t, 9, c.Offer.MaxGlobalApplications)
		require.Equal(t, "Spring", c.Title)
		f := fields(t, CouponSpec{BenefitType: s("Absolute"), VoucherType: s("Single use"), Quantity: n(4)}.Build(&c, false, nil))
		require.Contains(t, f, "benefit_type")
		require.Contains(t, f, "voucher_type")
		require.Contains(t, f, "quantity")
	})
}

func TestCodes(t *testing.T) {
	t.Parallel()
	c := NewCode()
	require.Len(t, c, CodeLength)
	require.True(t, ValidCode(c))
	require.NotEqual(t, c, NewCode())
	require.Equal(t, "ABC1", NormalizeCode(" abc1 "))
	require.False(t, ValidCode("ÄBC"))
}
