package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"fulfill/internal/config"
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
	if err := config.Load(fs, cfg, getenv); err != nil {
		return err
	}
	if *actor == "" {
		*actor = "cli:" + getenv("USER")
	}
	log := newLogger(stderr)
	st, err := build(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	defer st.close()

	if sub == "retry" && *failed {
		if len(numbers) > 0 {
			return errors.New("orders retry: give numbers or --failed, not both")
		}
		f := order.Filter{Status: order.StatusFulfillmentError, Limit: 1000}
		for {
			page, err := st.db.ListOrders(ctx, f)
			if err != nil {
				return err
			}
			for _, o := range page {
				numbers = append(numbers, o.Number)
			}
			if len(page) < f.Limit {
				break
			}
			f.AfterID = page[len(page)-1].ID
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
	for i, n := range numbers {
		o, err := st.db.GetOrder(ctx, n)
		if err != nil {
			fmt.Fprintf(stdout, "%s\terror\t%v\n", n, err)
			bad++
			continue
		}
		if *dry {
			fmt.Fprintf(stdout, "%s\t%s\twould %s\n", n, o.Status, sub)
			continue
		}
		switch sub {
		case "retry":
			o, err = st.service.Resubmit(ctx, n, fmt.Sprintf("cli-%d", i), *actor)
		case "mark-complete":
			o, err = st.db.MarkComplete(ctx, n, *actor, *reason)
		}
		if err != nil {
			fmt.Fprintf(stdout, "%s\terror\t%v\n", n, err)
			bad++
			continue
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", n, o.Status, o.LastError)
		if o.Status != order.StatusComplete {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d orders are not Complete", bad, len(numbers))
	}
	return nil
}
