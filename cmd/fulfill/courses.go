package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"fulfill/internal/app"
	"fulfill/internal/config"
	"fulfill/internal/lms"
)

const coursesUsage = "usage: fulfill courses publish COURSE… [--db …] [--lms-url …] [--lms-api-key …] [--lms-oauth-client-id … --lms-oauth-client-secret …]\n"

// cmdCourses is `fulfill courses publish COURSE…`: it publishes the courses'
// modes and SKUs to the LMS again, e.g. after the LMS refused them.
func cmdCourses(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, coursesUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "publish" {
		fmt.Fprint(stderr, coursesUsage)
		return errors.New("courses: want publish")
	}
	fs := flag.NewFlagSet("courses publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.Flags(fs)
	ids, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if cfg.JWTSecret == "" {
		cfg.JWTSecret = "unused-by-the-cli"
	}
	if err := config.Load(fs, cfg, getenv); err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("courses publish: name at least one course id")
	}
	if cfg.LMSURL == "" {
		return errors.New("courses publish: --lms-url is required")
	}
	a, err := app.New(ctx, cfg, newLogger(stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	client := app.LMSClient(cfg)
	failed := 0
	for _, id := range ids {
		c, err := a.DB.GetCourse(ctx, id)
		if err == nil {
			err = client.PublishCourse(ctx, lms.Publication(c))
		}
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%s\tfailed\t%v\n", id, err)
			continue
		}
		fmt.Fprintf(stdout, "%s\tpublished\t%d modes\n", id, len(c.Seats))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d courses not published", failed, len(ids))
	}
	return nil
}
