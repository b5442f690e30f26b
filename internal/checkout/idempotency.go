package checkout

// Idempotency is what a request with an Idempotency-Key should do.
type Idempotency struct {
	// Proceed: the key is new (or its first holder died); run the request
	// and finish the key.
	Proceed bool
	// Mismatch: the key was used with another body (answer 422).
	Mismatch bool
	// InFlight: the first request with this key is still running (409).
	InFlight bool
	// Status and Body replay the first answer.
	Status int
	Body   []byte
}
