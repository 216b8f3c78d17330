package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/ivr/callerverify/agentui"
	"github.com/ivr/callerverify/internal/store"
)

// cmdAgents manages dashboard accounts: add NAME, list, remove NAME.
func cmdAgents(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	const use = "usage: ivrd agents add NAME | list | remove NAME   (database: IVR_DB or --db)"
	switch {
	case len(args) == 0:
		fmt.Fprintln(stderr, use)
		return exitCode(2)
	case isHelp(args[0]):
		fmt.Fprintln(stdout, use)
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("agents "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := fs.String("db", getenv("IVR_DB"), "the service's database: a sqlite file or a postgres:// URL (IVR_DB)")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	if *dbPath == "" {
		return errors.New("IVR_DB: missing: the database the service uses (a sqlite file or a postgres:// URL)")
	}
	db, err := openDatabase(ctx, *dbPath)
	if err != nil {
		return fmt.Errorf("IVR_DB: open %s: %w", redactURL(*dbPath), err)
	}
	defer db.Close()

	switch {
	case sub == "add" && fs.NArg() == 1:
		name := fs.Arg(0)
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		switch err := agentui.AddAgent(ctx, db, name, pw, time.Now()); {
		case errors.Is(err, store.ErrExists):
			return fmt.Errorf("an agent named %q exists already: choose another name, or remove it first (ivrd agents remove %s) to set a new password", name, name)
		case err != nil:
			return fmt.Errorf("add agent %q: %w", name, err)
		}
		fmt.Fprintf(stdout, "Agent %q added.\n", name)
		return nil
	case sub == "list" && fs.NArg() == 0:
		agents, err := db.Agents(ctx)
		if err != nil {
			return fmt.Errorf("list agents: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED")
		for _, a := range agents {
			fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.CreatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case sub == "remove" && fs.NArg() == 1:
		if err := db.DeleteAgent(ctx, fs.Arg(0)); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no agent named %q", fs.Arg(0))
			}
			return fmt.Errorf("remove agent: %w", err)
		}
		fmt.Fprintf(stdout, "Agent %q removed; their sessions are logged out.\n", fs.Arg(0))
		return nil
	default:
		fmt.Fprintln(stderr, use)
		return exitCode(2)
	}
}

// readPassword prompts without echo on a terminal, or reads one line from a
// pipe (so that scripts can do `echo "$PW" | ivrd agents add alice`).
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password (at least 12 characters): ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(pw) != string(again) {
			return "", errors.New("the passwords differ")
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on standard input")
	}
	return pw, nil
}
