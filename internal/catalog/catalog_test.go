package catalog

import (
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/money"
)

func TestModeForProduct(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cert string
		idv  bool
		want string
	}{
		{"", false, "audit"},
		{"", true, "audit"},
		{"verified", true, "verified"},
		{"professional", true, "professional"},
		{"professional", false, "no-id-professional"},
		{"credit", true, "credit"},
		{"honor", false, "honor"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ModeForProduct(tt.cert, tt.idv), "%+v", tt)
	}
}

func TestSeatSKU(t *testing.T) {
	t.Parallel()
	s := Seat{CertificateType: "verified", IDVerificationRequired: true}
	a := SeatSKU("EDX", "course-v1:edX+DemoX+Demo", s)
	require.Regexp(t, `^[0-9A-F]{7}$`, a)
	require.Equal(t, a, SeatSKU("EDX", "course-v1:edX+DemoX+Demo", s), "same seat, same SKU")
	require.NotEqual(t, a, SeatSKU("EDX", "course-v1:edX+DemoX+Other", s))
	require.NotEqual(t, a, SeatSKU("EDX", "course-v1:edX+DemoX+Demo", Seat{CertificateType: "verified"}))
	require.NotEqual(t, a, SeatSKU("MIT", "course-v1:edX+DemoX+Demo", s))
}

func TestCourseValidate(t *testing.T) {
	t.Parallel()
	usd := func(s string) money.Amount { a, _ := money.Parse(s, "USD"); return a }
	good := func() Course {
		return Course{ID: "course-v1:edX+DemoX+Demo", Name: "Demo", Seats: []Seat{
			{Price: usd("0")},
			{CertificateType: "verified", IDVerificationRequired: true, Price: usd("49")},
			{CertificateType: "credit", CreditProvider: "asu", Price: usd("200"), SKU: "MY-SKU"},
		}}
	}
	c := good()
	require.NoError(t, c.Validate("EDX"))
	require.Len(t, c.Seats[0].SKU, 7)
	require.Equal(t, "MY-SKU", c.Seats[2].SKU)
	require.Equal(t, "Seat in Demo with verified certificate", c.Seats[1].Title)

	bad := []func(*Course){
		func(c *Course) { c.ID = "not a key" },
		func(c *Course) { c.Name = " " },
		func(c *Course) { c.Seats = nil },
		func(c *Course) { c.Seats[1].CertificateType = "gold" },
		func(c *Course) { c.Seats[2].CreditProvider = "" },
		func(c *Course) { c.Seats[1].CreditProvider = "asu" },
		func(c *Course) { c.Seats[1].SKU = "has space" },
		func(c *Course) { c.Seats = append(c.Seats, Seat{Price: usd("1")}) },
	}
	for i, mutate := range bad {
		c := good()
		mutate(&c)
		require.ErrorIs(t, c.Validate("EDX"), ErrInvalid, "case %d", i)
	}
}

func TestClassValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, ClassSeat.Validate(Attributes{"course_key": "a/b/c", "id_verification_required": true, "credit_hours": float64(3)}))
	require.ErrorIs(t, ClassSeat.Validate(Attributes{}), ErrInvalid)
	require.ErrorIs(t, ClassSeat.Validate(Attributes{"course_key": "a/b/c", "id_verification_required": "yes"}), ErrInvalid)
	require.ErrorIs(t, ClassSeat.Validate(Attributes{"course_key": "a/b/c", "credit_hours": 1.5}), ErrInvalid)
	require.ErrorIs(t, ClassSeat.Validate(Attributes{"course_key": "a/b/c", "colour": "red"}), ErrInvalid)
	require.ErrorIs(t, Class("Boat").Validate(nil), ErrInvalid)
	require.NoError(t, ClassDonation.Validate(Attributes{}))
	require.True(t, ValidCourseID("course-v1:edX+DemoX+Demo_Course"))
	require.True(t, ValidCourseID("edX/DemoX/2014"))
	require.False(t, ValidCourseID("course-v1:edX+DemoX"))
}
