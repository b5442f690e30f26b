package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/catalog"
)

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("lms-timeout: 3s\npartner: FILE\naddr: file:1\nmodules:\n  Seat: enrollment\n  Donation: noop\n"), 0o600))
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := Flags(fs)
	require.NoError(t, fs.Parse([]string{"--addr", "flag:1", "--config", file}))
	env := map[string]string{"FULFILL_PARTNER": "ENV", "FULFILL_ADDR": "env:1", "FULFILL_JWT_SECRET": "s", "FULFILL_SANDBOX_SECRET": "x",
		"FULFILL_LMS_URL": "http://lms", "FULFILL_LMS_API_KEY": "k"}
	require.NoError(t, Load(fs, c, func(k string) string { return env[k] }))
	require.Equal(t, "flag:1", c.Addr, "flag beats env and file")
	require.Equal(t, "ENV", c.Partner, "env beats file")
	require.Equal(t, 3*time.Second, c.LMSTimeout, "file beats default")
	require.Equal(t, "noop", c.Modules[catalog.ClassDonation])
	require.Equal(t, "s", c.JWTSecret)
	require.NotContains(t, c.String(), "=s ")
}

// TestModulesExtendTheDefaults: the file's modules: map changes the classes
// it names and keeps the others' defaults; an empty value or none unmaps
// a class.
func TestModulesExtendTheDefaults(t *testing.T) {
	t.Parallel()
	defaults := map[catalog.Class]string{catalog.ClassSeat: "enrollment", catalog.ClassEnrollmentCode: "enrollment_code",
		catalog.ClassCourseEntitlement: "entitlement"}
	for _, tc := range []struct {
		name, yaml string
		want       map[catalog.Class]string
		wantErr    string
	}{
		{"no modules", "partner: X\n", defaults, ""},
		{"empty map", "modules: {}\n", defaults, ""},
		{"no value", "modules:\n", defaults, ""},
		{"one more class", "modules:\n  Donation: webhook\n", map[catalog.Class]string{catalog.ClassSeat: "enrollment",
			catalog.ClassEnrollmentCode: "enrollment_code", catalog.ClassCourseEntitlement: "entitlement", catalog.ClassDonation: "webhook"}, ""},
		{"another module for a class", "modules:\n  Seat: webhook\n", map[catalog.Class]string{catalog.ClassSeat: "webhook",
			catalog.ClassEnrollmentCode: "enrollment_code", catalog.ClassCourseEntitlement: "entitlement"}, ""},
		{"unmapped by an empty value", "modules:\n  Course Entitlement: \"\"\n  Donation: webhook\n", map[catalog.Class]string{
			catalog.ClassSeat: "enrollment", catalog.ClassEnrollmentCode: "enrollment_code", catalog.ClassDonation: "webhook"}, ""},
		{"unmapped by none", "modules:\n  Enrollment Code: none\n  Course Entitlement: None\n", map[catalog.Class]string{
			catalog.ClassSeat: "enrollment"}, ""},
		{"unmapped by a null", "modules:\n  Course Entitlement:\n", map[catalog.Class]string{catalog.ClassSeat: "enrollment",
			catalog.ClassEnrollmentCode: "enrollment_code"}, ""},
		{"unknown class", "modules:\n  Entitlement: entitlement\n", nil, `unknown product class "Entitlement"`},
		{"not a map", "modules: enrollment\n", nil, "must map product classes"},
		{"not a name", "modules:\n  Seat: [a, b]\n", nil, "must name a module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "c.yaml")
			require.NoError(t, os.WriteFile(file, []byte(tc.yaml), 0o600))
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c := Flags(fs)
			require.NoError(t, fs.Parse([]string{"--config", file, "--demo"}))
			err := Load(fs, c, func(string) string { return "" })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, c.Modules)
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c := Flags(fs)
	require.ErrorContains(t, Load(fs, c, func(string) string { return "" }), "jwt-secret")
	c.Demo = true
	require.NoError(t, c.Validate())
	c.Lease = time.Second
	require.ErrorContains(t, c.Validate(), "lease")
	require.Equal(t, "postgres://u:****@h/db", maskURL("postgres://u:pw@h/db"))
}

func TestProcessors(t *testing.T) {
	t.Parallel()
	c := Config{}
	require.Empty(t, c.ProcessorNames(), "no processor unless configured")
	c.Demo = true
	require.Equal(t, []string{"sandbox"}, c.ProcessorNames(), "the demo has the sandbox")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg := Flags(fs)
	require.NoError(t, fs.Parse([]string{"--jwt-secret", "s", "--payment-processors", "sandbox", "--lms-url", "http://lms", "--lms-api-key", "k"}))
	require.ErrorContains(t, Load(fs, cfg, func(string) string { return "" }), "sandbox-allow-production", "no sandbox outside the demo unless asked")
	cfg.SandboxAllowProduction = true
	require.ErrorContains(t, cfg.Validate(), "sandbox-secret")
	cfg.Processors = "stripe"
	require.ErrorContains(t, cfg.Validate(), "stripe-secret-key")
	cfg.Processors = "paypal"
	require.ErrorContains(t, cfg.Validate(), "unknown payment processor")
}

// TestLMSRequired: outside the demo the service refuses to start without
// an LMS to fulfill seats, unless told so on purpose with --lms-url ”.
func TestLMSRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		noLMS   bool
	}{
		{"nothing", nil, "lms-url", false},
		{"no key", []string{"--lms-url", "http://lms"}, "lms-api-key", false},
		{"blank key", []string{"--lms-url", "http://lms", "--lms-api-key", " "}, "lms-api-key", false},
		{"both", []string{"--lms-url", "http://lms", "--lms-api-key", "k"}, "", false},
		{"no LMS on purpose", []string{"--lms-url", ""}, "", true},
		{"write timeout below the LMS timeout", []string{"--lms-url", "http://lms", "--lms-api-key", "k", "--write-timeout", "5s"}, "write-timeout", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c := Flags(fs)
			require.NoError(t, fs.Parse(append([]string{"--jwt-secret", "s"}, tc.args...)))
			err := Load(fs, c, func(string) string { return "" })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.noLMS, c.NoLMS)
		})
	}
}
