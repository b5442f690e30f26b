package main

import (
	"context"
	"errors"
	"io"
)

// cmdLoadtest is being written; see issue 7.
func cmdLoadtest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("loadtest: not implemented yet")
}
