package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/glenv/glenv/internal/variable"
	"github.com/glenv/glenv/internal/variables"
)

// variableLevel is where a variable command acts: --integration (or the
// only integration there is, or the environment's), and --environment.
type variableLevel struct {
	integration, environment string
}

func (l *variableLevel) flags(c *cobra.Command) {
	c.Flags().StringVarP(&l.integration, "integration", "i", "", "integration (default: the environment's, or the only one there is)")
	c.Flags().StringVarP(&l.environment, "environment", "e", "", "environment whose own variable it is (default: the integration's level)")
}

// path is the API path of the level's variables, the integration resolved.
func (l *variableLevel) path(c *client) (string, error) {
	integ := l.integration
	switch {
	case integ == "" && l.environment != "":
		e, err := resolveEnv(c, "", l.environment)
		if err != nil {
			return "", err
		}
		integ = e.Integration
	case integ == "":
		var ins []struct {
			Integration struct {
				Name string `json:"name"`
			} `json:"integration"`
		}
		if err := c.do(http.MethodGet, "/api/v1/integrations", nil, &ins); err != nil {
			return "", err
		}
		if len(ins) != 1 {
			return "", fmt.Errorf("--integration: %d integrations are visible to you; name one (glenv integration:list)", len(ins))
		}
		integ = ins[0].Integration.Name
	}
	p := "/api/v1/integrations/" + url.PathEscape(integ)
	if l.environment != "" {
		p += "/environments/" + url.PathEscape(l.environment)
	}
	return p + "/variables", nil
}

// variableFlags are the settings create and update send; only those given
// on the command line are sent to update.
type variableFlags struct {
	value                                            string
	sensitive, inheritable, visibleBuild, visibleRun bool
}

func (f *variableFlags) flags(c *cobra.Command) {
	// No default that could echo a value in --help.
	c.Flags().StringVar(&f.value, "value", "", "the value; --value - reads it from stdin, which keeps it out of shell history (one trailing newline is dropped)")
	c.Flags().BoolVar(&f.sensitive, "sensitive", false, "encrypt the value at rest, never show it again and redact it from logs; fork code never gets it")
	c.Flags().BoolVar(&f.inheritable, "inheritable", true, "environments below this one (children, merge requests) inherit it; --inheritable=false keeps it here")
	c.Flags().BoolVar(&f.visibleBuild, "visible-build", true, "build steps see it (--visible-build=false hides it from them)")
	c.Flags().BoolVar(&f.visibleRun, "visible-run", true, "the app sees it (--visible-run=false hides it from the app)")
}

// input is the request body for what was given on the command line.
func (f *variableFlags) input(cmd *cobra.Command, stdin io.Reader) (variables.Input, error) {
	var in variables.Input
	set := cmd.Flags().Changed
	if set("value") {
		v := f.value
		if v == "-" {
			raw, err := io.ReadAll(io.LimitReader(stdin, variable.MaxValueBytes+2))
			if err != nil {
				return in, fmt.Errorf("--value -: read stdin: %w", err)
			}
			v = strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		}
		in.Value = &v
	}
	for _, b := range []struct {
		flag string
		val  bool
		dst  **bool
	}{{"sensitive", f.sensitive, &in.Sensitive}, {"inheritable", f.inheritable, &in.Inheritable},
		{"visible-build", f.visibleBuild, &in.VisibleBuild}, {"visible-run", f.visibleRun, &in.VisibleRun}} {
		if set(b.flag) {
			v := b.val
			*b.dst = &v
		}
	}
	return in, nil
}

func variableCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	// cmd builds one variable command on a level.
	cmd := func(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, c *client, base string, args []string) error) (*cobra.Command, *variableLevel) {
		lv := &variableLevel{}
		c := &cobra.Command{Use: use, Short: short, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := cf.client(getenv)
				if err != nil {
					return err
				}
				base, err := lv.path(c)
				if err != nil {
					return err
				}
				return run(cmd, c, base, args)
			}}
		lv.flags(c)
		return c, lv
	}
	printChange := func(cmd *cobra.Command, verb string, ch variables.Change) error {
		if cf.format == "json" {
			return printJSON(cmd.OutOrStdout(), ch)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "Variable %s %s on %s.\n", cell(ch.Variable.Name), verb, levelWords(ch.Variable))
		if len(ch.Redeploys) == 0 {
			fmt.Fprintln(w, "No running environment resolves to other values: nothing is redeployed.")
			return nil
		}
		names := make([]string, len(ch.Redeploys))
		for i, n := range ch.Redeploys {
			names[i] = cell(n)
		}
		fmt.Fprintf(w, "Redeploying (once, after a short wait for more changes): %s\n", strings.Join(names, ", "))
		return nil
	}

	cfFlags := &variableFlags{}
	create, _ := cmd("variable:create NAME", "Create a variable on an integration or one environment", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, base string, args []string) error {
			in, err := cfFlags.input(cmd, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if in.Value == nil {
				return errors.New("--value: required (`--value -` reads it from stdin)")
			}
			in.Name = args[0]
			var ch variables.Change
			if err := c.do(http.MethodPost, base, in, &ch); err != nil {
				return err
			}
			return printChange(cmd, "created", ch)
		})
	cfFlags.flags(create)

	ufFlags := &variableFlags{}
	update, _ := cmd("variable:update NAME", "Change a variable's value or settings", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, base string, args []string) error {
			in, err := ufFlags.input(cmd, cmd.InOrStdin())
			if err != nil {
				return err
			}
			var ch variables.Change
			if err := c.do(http.MethodPatch, base+"/"+url.PathEscape(args[0]), in, &ch); err != nil {
				return err
			}
			return printChange(cmd, "updated", ch)
		})
	ufFlags.flags(update)

	del, _ := cmd("variable:delete NAME", "Delete a variable", cobra.ExactArgs(1), func(cmd *cobra.Command, c *client, base string, args []string) error {
		var ch variables.Change
		if err := c.do(http.MethodDelete, base+"/"+url.PathEscape(args[0]), nil, &ch); err != nil {
			return err
		}
		return printChange(cmd, "deleted", ch)
	})

	get, _ := cmd("variable:get NAME", "Show a variable (a sensitive value is never shown)", cobra.ExactArgs(1), func(cmd *cobra.Command, c *client, base string, args []string) error {
		var v variables.View
		if err := c.do(http.MethodGet, base+"/"+url.PathEscape(args[0]), nil, &v); err != nil {
			return err
		}
		if cf.format == "json" {
			return printJSON(cmd.OutOrStdout(), v)
		}
		rows := [][]string{{"name", v.Name}, {"level", levelWords(v)}, {"value", valueWords(v)},
			{"sensitive", strconv.FormatBool(v.Sensitive)}, {"inheritable", strconv.FormatBool(v.Inheritable)},
			{"visible_build", strconv.FormatBool(v.VisibleBuild)}, {"visible_run", strconv.FormatBool(v.VisibleRun)},
			{"created_at", fmtTime(v.CreatedAt)}, {"updated_at", fmtTime(v.UpdatedAt)}}
		table(cmd.OutOrStdout(), []string{"PROPERTY", "VALUE"}, rows)
		return nil
	})

	var listLevel *variableLevel
	list, listLevel := cmd("variable:list", "List variables: an integration's at every level, or those an environment resolves to", cobra.NoArgs,
		func(cmd *cobra.Command, c *client, base string, _ []string) error {
			var vs []variables.View
			if err := c.do(http.MethodGet, base, nil, &vs); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), vs)
			}
			var rows [][]string
			for _, v := range vs {
				rows = append(rows, []string{v.Name, v.Level, v.Environment, valueWords(v), strconv.FormatBool(v.Sensitive),
					strconv.FormatBool(v.Inheritable), strconv.FormatBool(v.VisibleBuild), strconv.FormatBool(v.VisibleRun)})
			}
			header := []string{"NAME", "LEVEL", "ENVIRONMENT", "VALUE", "SENSITIVE", "INHERITABLE", "BUILD", "RUN"}
			if listLevel.environment != "" {
				header[2] = "SET ON"
			}
			table(cmd.OutOrStdout(), header, rows)
			return nil
		})
	return []*cobra.Command{create, list, get, update, del}
}

func levelWords(v variables.View) string {
	if v.Environment == "" {
		return "integration " + cell(v.Integration)
	}
	return "environment " + cell(v.Environment) + " of integration " + cell(v.Integration)
}

func valueWords(v variables.View) string {
	switch {
	case v.Sensitive:
		return "[sensitive: set, never shown]"
	case v.Value != nil:
		return *v.Value
	}
	return ""
}
