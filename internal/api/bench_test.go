package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"fulfill/internal/sqlstore"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// BenchmarkCheckout measures the whole free checkout over HTTP (place the
// order, enroll through the LMS stand-in, record the outcome), in parallel
// from many learners. -cpuprofile shows where a checkout's time goes.
func BenchmarkCheckout(b *testing.B) {
	for _, engine := range sqlstoretest.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			benchCheckout(b, engine)
		})
	}
}

func benchCheckout(b *testing.B, engine sqlstore.Engine) {
	e := newEnv(b, engine, envOpts{})
	sku := e.skus["verified"]
	// A new learner per checkout: a learner holds a seat once. Tokens are
	// signed before the timer starts.
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = e.token(fmt.Sprintf("bench-%d", i), false)
	}
	body := []byte(`{"products":[{"sku":"` + sku + `"}],"checkout":true}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) - 1
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v2/baskets/", bytes.NewReader(body))
			req.Header.Set("Authorization", "JWT "+tokens[i])
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}
