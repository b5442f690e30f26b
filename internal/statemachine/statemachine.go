// Package statemachine is the one transition-table type of every state
// machine in the service (order, line, refund, refund line, basket,
// enrollment code): a table of allowed moves, checked in one place, as
// River keeps its job states as data.
package statemachine

import (
	"fmt"

	"fulfill/internal/apperr"
)

// ErrInvalidTransition is returned when a move is not in a table.
var ErrInvalidTransition = apperr.New(apperr.Conflict, "invalid status transition")

// Table lists, for each status, the statuses it may move to. A status
// with no moves is terminal; a status missing from the table is unknown.
type Table[S ~string] struct {
	// Name names the machine in errors ("order", "refund line").
	Name string
	// Moves is the table itself.
	Moves map[S][]S
	// SameIsNoop allows moving to the same status as a no-op (Oscar's
	// orders and lines); otherwise only a listed self-loop is allowed.
	SameIsNoop bool
}

// Valid reports whether s is a status of the table.
func (t Table[S]) Valid(s S) bool { _, ok := t.Moves[s]; return ok }

// Terminal reports whether s allows no move.
func (t Table[S]) Terminal(s S) bool { return t.Valid(s) && len(t.Moves[s]) == 0 }

// Check returns nil when from may move to to, else an error wrapping
// ErrInvalidTransition.
func (t Table[S]) Check(from, to S) error {
	if !t.Valid(from) || !t.Valid(to) {
		return fmt.Errorf("%w: unknown %s status %q → %q", ErrInvalidTransition, t.Name, from, to)
	}
	if from == to && t.SameIsNoop {
		return nil
	}
	for _, s := range t.Moves[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s %q → %q", ErrInvalidTransition, t.Name, from, to)
}
