package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"fulfill/internal/auth"
	"fulfill/internal/lms/lmstest"
	"fulfill/internal/sqlstore/sqlstoretest"
)

// lockedBuffer collects a process's output safely across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, within time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, msg)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func request(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// TestDemoWalkthrough runs the README's first command in-process and follows
// the curl it prints.
func TestDemoWalkthrough(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan error, 1)
	db := "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
	go func() {
		done <- run(ctx, []string{"serve", "--demo", "--addr", "127.0.0.1:0", "--db", db}, func(string) string { return "" }, out, io.Discard)
	}()
	addrRE := regexp.MustCompile(`listening on (http://\S+)`)
	waitFor(t, 30*time.Second, func() bool { return addrRE.MatchString(out.String()) }, "server start")
	base := addrRE.FindStringSubmatch(out.String())[1]
	token := regexp.MustCompile(`export TOKEN=(\S+)`).FindStringSubmatch(out.String())[1]
	curl := regexp.MustCompile(`-d '(\{.*\})'`).FindStringSubmatch(out.String())[1]

	code, body := request(t, "POST", base+"/api/v2/baskets/", token, curl)
	require.Equal(t, http.StatusOK, code, string(body))
	var ans struct {
		Order struct{ Number, Status string }
	}
	require.NoError(t, json.Unmarshal(body, &ans))
	require.Equal(t, "Complete", ans.Order.Status)
	code, body = request(t, "GET", base+"/api/v2/orders/"+ans.Order.Number+"/", token, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"status":"Complete"`)
	code, _ = request(t, "GET", base+"/readyz", "", "")
	require.Equal(t, http.StatusOK, code)

	cancel()
	require.NoError(t, <-done)
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fulfill")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run())
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	base string
}

func startServe(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &lockedBuffer{}}
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	p.cmd.Stderr = p.out
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	timeout := time.After(30 * time.Second)
	for p.base == "" {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "server exited: %s", p.out.String())
			if m := re.FindStringSubmatch(l); m != nil {
				p.base = m[1]
			}
		case <-timeout:
			t.Fatalf("server did not start: %s", p.out.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

// TestKilledMidRequestLosesNothing kills a real `fulfill serve` with SIGKILL
// while checkouts wait on a slow LMS, restarts it, and checks that every
// order ends Complete with exactly one enrollment per learner.
func TestKilledMidRequestLosesNothing(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	for _, engine := range sqlstoretest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			stub := lmstest.New(lmstest.Options{APIKey: "k", Faults: lmstest.Faults{Latency: 400 * time.Millisecond}})
			lmsSrv := httptest.NewServer(stub)
			t.Cleanup(func() { stub.Close(); lmsSrv.Close() })
			dbURL := sqlstoretest.URL(t, engine)
			args := []string{"--db", dbURL, "--lms-url", lmsSrv.URL, "--lms-api-key", "k", "--jwt-secret", "s",
				"--lms-timeout", "1s", "--lease", "2s", "--retry-base", "50ms", "--retry-cap", "200ms", "--worker-poll", "50ms"}
			p := startServe(t, bin, args...)
			staff, err := auth.Sign("s", "staff", true, time.Hour, time.Now())
			require.NoError(t, err)
			code, body := request(t, "PUT", p.base+"/api/v2/courses/course-v1:edX+Kill+Run/", staff,
				`{"name":"Kill","modes":[{"certificate_type":"verified","id_verification_required":true,"price":"0","currency":"USD"}]}`)
			require.Equal(t, http.StatusOK, code, string(body))
			sku := regexp.MustCompile(`"sku":"(\w+)"`).FindStringSubmatch(string(body))[1]

			const learners = 40
			var mu sync.Mutex
			acked := map[string]string{} // learner → order number
			var wg sync.WaitGroup
			for i := range learners {
				wg.Add(1)
				go func() {
					defer wg.Done()
					user := fmt.Sprintf("learner%02d", i)
					tok, _ := auth.Sign("s", user, false, time.Hour, time.Now())
					req, _ := http.NewRequest("POST", p.base+"/api/v2/baskets/", strings.NewReader(`{"products":[{"sku":"`+sku+`"}],"checkout":true}`))
					req.Header.Set("Authorization", "JWT "+tok)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						return // killed mid-request: not acknowledged
					}
					defer res.Body.Close()
					var ans struct{ Order struct{ Number string } }
					if res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&ans) == nil {
						mu.Lock()
						acked[user] = ans.Order.Number
						mu.Unlock()
					}
				}()
				if i == learners/2-1 {
					time.Sleep(900 * time.Millisecond) // the first half is answered
				}
			}
			// Kill while the second half waits on the slow LMS.
			time.Sleep(200 * time.Millisecond)
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
			_ = p.cmd.Wait()
			wg.Wait()

			p2 := startServe(t, bin, args...)
			var orders []struct {
				Number, Status string
				User           struct{ Username string }
			}
			waitFor(t, 60*time.Second, func() bool {
				code, body := request(t, "GET", p2.base+"/api/v2/orders/?page_size=1000", staff, "")
				if code != http.StatusOK {
					return false
				}
				var list struct {
					Results []struct {
						Number, Status string
						User           struct{ Username string }
					}
				}
				if json.Unmarshal(body, &list) != nil {
					return false
				}
				orders = list.Results
				for _, o := range orders {
					if o.Status != "Complete" {
						return false
					}
				}
				return true
			}, "every order Complete after the restart")

			byUser := map[string]string{}
			for _, o := range orders {
				byUser[o.User.Username] = o.Number
			}
			require.NotEmpty(t, acked, "some orders were acknowledged before the kill")
			require.Less(t, len(acked), learners, "the kill interrupted some checkouts")
			for user, number := range acked {
				require.Equal(t, number, byUser[user], "acknowledged order of %s exists", user)
			}
			require.Len(t, byUser, len(orders), "one order per learner")
			stats := stub.Stats()
			require.Equal(t, len(orders), stub.ActiveEnrollments(), "every order enrolled its learner")
			require.Equal(t, len(orders), stats.Activations, "no learner enrolled twice")
			t.Logf("%d orders placed, %d acknowledged before the kill; LMS saw %d POSTs", len(orders), len(acked), stats.Posts)
		})
	}
}

// TestHelpExitsZero: asking any command for its usage prints it and is not
// an error, so the process exits 0.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // in stdout+stderr, case-insensitive
	}{
		{[]string{"--help"}, "usage"},
		{[]string{"-h"}, "usage"},
		{[]string{"help"}, "usage"},
		{[]string{"serve", "--help"}, "-db"},
		{[]string{"serve", "-h"}, "-db"},
		{[]string{"migrate", "-h"}, "-db"},
		{[]string{"migrate", "--help"}, "-db"},
		{[]string{"token", "--help"}, "-user"},
		{[]string{"lms-stub", "--help"}, "-fail-rate"},
		{[]string{"orders", "--help"}, "fulfill orders retry"},
		{[]string{"orders", "-h"}, "fulfill orders retry"},
		{[]string{"orders", "retry", "--help"}, "-dry-run"},
		{[]string{"orders", "mark-complete", "--help"}, "-reason"},
		{[]string{"courses", "--help"}, "fulfill courses publish"},
		{[]string{"courses", "publish", "--help"}, "-lms-url"},
		{[]string{"loadtest", "--help"}, "-concurrency"},
		{[]string{"loadtest", "-h"}, "-concurrency"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &stdout, &stderr)
			require.NoError(t, err, "stderr:\n%s", stderr.String())
			out := strings.ToLower(stdout.String() + stderr.String())
			require.Contains(t, out, "usage", "args %v", tc.args)
			require.Contains(t, out, tc.want, "args %v", tc.args)
		})
	}
}
