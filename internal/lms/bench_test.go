package lms_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"fulfill/internal/lms"
	"fulfill/internal/lms/lmstest"
)

// BenchmarkEnrollRoundTrip is one enrollment POST through the client to the
// LMS stand-in over loopback HTTP (keep-alive), one new learner per call:
// the floor of what fulfilling a seat costs outside the database.
//
//	go test -run '^$' -bench EnrollRoundTrip ./internal/lms/
func BenchmarkEnrollRoundTrip(b *testing.B) {
	const course = "course-v1:Bench+E1+Run"
	setup := func(b *testing.B) (*lms.Client, *lmstest.Server) {
		stub := lmstest.New(lmstest.Options{APIKey: testKey, Seed: 1})
		srv := httptest.NewServer(stub)
		b.Cleanup(func() { stub.Close(); srv.Close() })
		return lms.NewClient(srv.URL, testKey, 5*time.Second), stub
	}
	enroll := func(c *lms.Client, i int64) error {
		user := "bench-" + strconv.FormatInt(i, 10)
		err := c.Enroll(context.Background(), lms.EnrollmentRequest{User: user, IsActive: true, Mode: "verified",
			CourseDetails: lms.CourseDetails{CourseID: course}}, "EDX-"+strconv.FormatInt(100000+i, 10)+":1")
		return err
	}
	b.Run("serial", func(b *testing.B) {
		c, stub := setup(b)
		var i int64
		for b.Loop() {
			i++
			if err := enroll(c, i); err != nil {
				b.Fatal(err)
			}
		}
		if got := stub.Stats().Activations; int64(got) != i {
			b.Fatalf("%d activations for %d calls", got, i)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
	b.Run("parallel", func(b *testing.B) {
		c, stub := setup(b)
		var n atomic.Int64
		b.SetParallelism(16) // 16 × GOMAXPROCS concurrent enrollments
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := enroll(c, n.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if got := stub.Stats().Activations; int64(got) != n.Load() {
			b.Fatalf("%d activations for %d calls", got, n.Load())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
}
