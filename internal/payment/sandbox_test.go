package payment

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"fulfill/internal/money"
)

func TestSandboxNotification(t *testing.T) {
	t.Parallel()
	s := &Sandbox{Secret: []byte("k")}
	ctx := context.Background()
	body := []byte(`{"basket_id": 12, "reference": "txn-1", "amount": "49.00", "currency": "USD", "decision": "accept"}`)
	h := http.Header{}
	h.Set(SignatureHeader, Sign([]byte("k"), body))
	n, err := s.ParseNotification(ctx, h, body)
	require.NoError(t, err)
	require.Equal(t, int64(12), n.BasketID)
	require.Equal(t, money.Amount{Minor: 4900, Currency: "USD"}, n.Amount)
	require.Equal(t, Accept, n.Decision)

	for name, hdr := range map[string]string{"unsigned": "", "wrong key": Sign([]byte("x"), body), "not hex": "zz"} {
		h := http.Header{}
		h.Set(SignatureHeader, hdr)
		_, err := s.ParseNotification(ctx, h, body)
		require.ErrorIs(t, err, ErrBadSignature, name)
	}
	tampered := []byte(`{"basket_id": 12, "reference": "txn-1", "amount": "0.01", "currency": "USD", "decision": "accept"}`)
	_, err = s.ParseNotification(ctx, h, tampered)
	require.ErrorIs(t, err, ErrBadSignature)

	bad := []byte(`{"basket_id": 12, "reference": "txn-1", "amount": "49.00", "currency": "USD", "decision": "maybe"}`)
	h.Set(SignatureHeader, Sign([]byte("k"), bad))
	_, err = s.ParseNotification(ctx, h, bad)
	require.ErrorIs(t, err, ErrInvalid)

	_, err = (&Sandbox{}).ParseNotification(ctx, h, bad)
	require.ErrorIs(t, err, ErrBadSignature, "no secret configured: nothing verifies")

	ref, err := s.IssueCredit(ctx, "EDX-1", "txn-1", money.Amount{Minor: 1, Currency: "USD"}, "refund-1")
	require.NoError(t, err)
	require.Equal(t, "credit-refund-1", ref)
	s.FailCredits(context.DeadlineExceeded)
	_, err = s.IssueCredit(ctx, "EDX-1", "txn-1", money.Amount{Minor: 1, Currency: "USD"}, "refund-1")
	require.ErrorIs(t, err, ErrCredit)
}
