package config

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDefaultProcessor: --default-payment-processor picks the processor of
// a basket bought without one, must be enabled, and defaults to the first
// of --payment-processors.
func TestDefaultProcessor(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) *Config {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := Flags(fs)
		require.NoError(t, fs.Parse(append([]string{"--demo"}, args...)))
		return c
	}
	c := parse()
	require.NoError(t, c.Validate())
	require.Equal(t, "sandbox", c.DefaultProcessorName(), "the demo's only processor")

	c = parse("--payment-processors", "stripe,sandbox", "--stripe-secret-key", "sk", "--stripe-webhook-secret", "wh")
	require.NoError(t, c.Validate())
	require.Equal(t, "stripe", c.DefaultProcessorName(), "the first one named")

	c = parse("--payment-processors", "stripe,sandbox", "--stripe-secret-key", "sk", "--stripe-webhook-secret", "wh",
		"--default-payment-processor", "sandbox")
	require.NoError(t, c.Validate())
	require.Equal(t, "sandbox", c.DefaultProcessorName())

	c = parse("--default-payment-processor", "paypal")
	require.ErrorContains(t, c.Validate(), "--default-payment-processor")

	require.Equal(t, "http://lms/dashboard", Config{LMSURL: "http://lms/"}.DashboardURL())
	require.Equal(t, "https://lms/me", Config{LMSURL: "http://lms", LMSDashboardURL: "https://lms/me"}.DashboardURL())
	require.Empty(t, Config{}.DashboardURL())
}
