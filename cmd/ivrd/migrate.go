package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ivr/callerverify/internal/postgres"
	"github.com/ivr/callerverify/internal/sqlite"
)

// cmdMigrate copies a sqlite database (the single-instance store) into an
// empty PostgreSQL database, for moving a service onto several instances:
// ivrd migrate --from FILE --to URL.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the sqlite database file to copy (IVR_DB of the single instance); stop the service first")
	to := fs.String("to", "", "the PostgreSQL database to copy it into, a postgres:// URL; it must hold no data")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ivrd migrate --from FILE --to postgres://…")
		fmt.Fprintln(fs.Output(), "Copies calls, verifications, the event log (keeping its order), agents, their sessions and failed")
		fmt.Fprintln(fs.Output(), "logins from a sqlite file into an empty PostgreSQL database, in one transaction.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	var problems []string
	switch st, err := os.Stat(*from); {
	case *from == "":
		problems = append(problems, "--from: missing: the sqlite database file")
	case err != nil:
		problems = append(problems, fmt.Sprintf("--from: %v", err))
	case !st.Mode().IsRegular():
		problems = append(problems, fmt.Sprintf("--from: %s is not a file", *from))
	}
	switch {
	case *to == "":
		problems = append(problems, "--to: missing: the PostgreSQL database URL")
	case !isPostgresURL(*to):
		problems = append(problems, "--to: not a postgres:// URL")
	default:
		if err := checkDatabaseSetting(*to); err != nil {
			problems = append(problems, "--to: "+err.Error())
		}
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}

	src, err := sqlite.Open(ctx, *from) // brings the file's schema up to date first
	if err != nil {
		return fmt.Errorf("--from %s: %w", *from, err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to) // creates or updates the schema
	if err != nil {
		return fmt.Errorf("--to %s: %w", redactURL(*to), err)
	}
	defer dst.Close()

	var (
		counts map[string]int64
		order  []string
	)
	err = src.Export(ctx, func(tables []sqlite.Table) error {
		in := make([]postgres.Table, len(tables))
		for i, t := range tables {
			in[i] = postgres.Table{Name: t.Name, Columns: t.Columns, Rows: t.Rows}
			order = append(order, t.Name)
		}
		var err error
		counts, err = dst.Import(ctx, in)
		return err
	})
	if errors.Is(err, postgres.ErrNotEmpty) {
		return fmt.Errorf("--to %s holds data already; ivrd migrate copies into an empty database only: %w", redactURL(*to), err)
	}
	if err != nil {
		return fmt.Errorf("copy %s into %s: %w", *from, redactURL(*to), err)
	}
	parts := make([]string, len(order))
	for i, name := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[name], strings.ReplaceAll(name, "_", " "))
	}
	fmt.Fprintf(stdout, "Copied %s from %s into %s.\n", strings.Join(parts, ", "), *from, redactURL(*to))
	fmt.Fprintln(stdout, "Set IVR_DB to that URL on every instance and start them; keep the file as a backup.")
	return nil
}
