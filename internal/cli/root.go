// Package cli is glenv's command line: `glenv serve` and the Platform.sh-style
// client commands (integration:*, environment:*, variable:*, activity:*, token:*) that
// talk to a glenv server over /api/v1. Commands print tables by default and
// JSON with --format json; errors go to stderr with a non-zero exit.
package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Env is how the CLI reads the process environment (tests pass their own).
type Env func(string) string

// clientFlags are the flags every client command shares.
type clientFlags struct {
	server string
	token  string
	format string
}

// NewRoot builds the whole command tree.
func NewRoot(getenv Env, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "glenv",
		Short:         "Preview environments for every GitLab branch and merge request",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cf := &clientFlags{}
	pf := root.PersistentFlags()
	pf.StringVar(&cf.server, "server", or(getenv("GLENV_SERVER"), "http://127.0.0.1:8080"), "glenv server URL [GLENV_SERVER]")
	// No default from GLENV_API_TOKEN here: flag defaults are printed by
	// --help. client() reads the variable when the flag is not given.
	pf.StringVar(&cf.token, "api-token", "", "API token; default: GLENV_API_TOKEN, else the admin-token file of the local data dir")
	pf.StringVar(&cf.format, "format", "table", "output format: table or json")
	root.AddCommand(newServe(getenv))
	for _, c := range integrationCommands(cf, getenv) {
		root.AddCommand(c)
	}
	for _, c := range environmentCommands(cf, getenv) {
		root.AddCommand(c)
	}
	for _, c := range activityCommands(cf, getenv) {
		root.AddCommand(c)
	}
	for _, c := range tokenCommands(cf, getenv) {
		root.AddCommand(c)
	}
	root.AddCommand(variableCommands(cf, getenv)...)
	for _, group := range [][]*cobra.Command{gitlabHostCommands(cf, getenv), spaceCommands(cf, getenv), userCommands(cf, getenv), auditCommands(cf, getenv)} {
		root.AddCommand(group...)
	}
	return root
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	root := NewRoot(os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	return 0
}
