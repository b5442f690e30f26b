package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"fulfill/internal/app"
	"fulfill/internal/config"
	"fulfill/internal/fulfillment"
	"fulfill/internal/order"
)

const ordersUsage = `usage:
  fulfill orders retry NUMBER… [--dry-run]
  fulfill orders retry --failed [--dry-run]
  fulfill orders mark-complete NUMBER… --reason TEXT [--dry-run]
(plus the serve flags --db, --lms-url, --lms-api-key, --config …)
`

// parseInterleaved lets flags follow positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdOrders(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, ordersUsage)
		return nil
	}
	if len(args) == 0 || (args[0] != "retry" && args[0] != "mark-complete") {
		fmt.Fprint(stderr, ordersUsage)
		return errors.New("orders: want retry or mark-complete")
	}
	sub := args[0]
	fs := flag.NewFlagSet("orders "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.Flags(fs)
	dry := fs.Bool("dry-run", false, "show what would be done, change nothing")
	failed := fs.Bool("failed", false, "retry every order in Fulfillment Error")
	reason := fs.String("reason", "", "why the orders are marked complete (required)")
	actor := fs.String("actor", "", "who is acting (default: $USER)")
	numbers, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if cfg.JWTSecret == "" {
		cfg.JWTSecret = "unused-by-the-cli" // no tokens are checked here
	}
	// Marking complete calls nobody; a retry needs the LMS and refuses to
	// start, before it touches any order, without its settings.
	cfg.NoLMS = sub == "mark-complete"
	if err := config.Load(fs, cfg, getenv); err != nil {
		return err
	}
	if *actor == "" {
		*actor = "cli:" + getenv("USER")
	}
	a, err := app.New(ctx, cfg, newLogger(stderr))
	if err != nil {
		return err
	}
	defer a.Close()

	if sub == "retry" && *failed {
		if len(numbers) > 0 {
			return errors.New("orders retry: give numbers or --failed, not both")
		}
		if numbers, _, err = a.Fulfill.Matching(ctx, order.Filter{}, 1_000_000); err != nil {
			return err
		}
	}
	if len(numbers) == 0 {
		fmt.Fprint(stderr, ordersUsage)
		return errors.New("orders: no order numbers")
	}
	if sub == "mark-complete" && strings.TrimSpace(*reason) == "" {
		return errors.New("orders mark-complete: --reason is required")
	}
	var bad int
	if *dry {
		for _, n := range numbers {
			o, err := a.DB.GetOrder(ctx, n)
			if err != nil {
				fmt.Fprintf(stdout, "%s\terror\t%v\n", n, err)
				bad++
				continue
			}
			fmt.Fprintf(stdout, "%s\t%s\twould %s\n", n, o.Status, sub)
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d orders not found", bad, len(numbers))
		}
		return nil
	}
	var results []fulfillment.Resubmission
	switch sub {
	case "retry":
		results = a.Fulfill.ResubmitMany(ctx, numbers, *actor, 8)
	case "mark-complete":
		for _, n := range numbers {
			o, err := a.DB.MarkComplete(ctx, n, *actor, *reason)
			results = append(results, fulfillment.Resubmission{Number: n, Order: o, Err: err})
		}
	}
	for _, r := range results {
		switch {
		case r.Err == nil || errors.Is(r.Err, order.ErrNotDelivered):
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", r.Number, r.Order.Status, r.Order.LastError)
		case r.Skipped() && r.Order.Status == order.StatusComplete:
			fmt.Fprintf(stdout, "%s\t%s\tnothing to retry\n", r.Number, r.Order.Status)
			continue
		default:
			fmt.Fprintf(stdout, "%s\terror\t%v\n", r.Number, r.Err)
		}
		if r.Order.Status != order.StatusComplete {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d orders are not Complete", bad, len(numbers))
	}
	return nil
}
