package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

type spaceView struct {
	Name        string `json:"name"`
	Parent      string `json:"parent"`
	Inherit     bool   `json:"inherit"`
	Description string `json:"description"`
	Role        string `json:"role"`
}

func spaceCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	var parent, description string
	var noInherit bool
	add := &cobra.Command{
		Use: "space:add NAME", Short: "Create a space below --parent (admin of the parent)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			inherit := !noInherit
			var s spaceView
			if err := c.do(http.MethodPost, "/api/v1/spaces", map[string]any{"name": args[0], "parent": parent, "inherit": inherit, "description": description}, &s); err != nil {
				return err
			}
			return printSpaces(cmd, cf, []spaceView{s})
		},
	}
	add.Flags().StringVar(&parent, "parent", "root", "the space above it")
	add.Flags().BoolVar(&noInherit, "no-inherit", false, "do not inherit: roles here give no read on the parent, integrations above are not used here")
	add.Flags().StringVar(&description, "description", "", "what the space is for")
	list := &cobra.Command{
		Use: "space:list", Short: "List the spaces you have a role in", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var ss []spaceView
			if err := c.do(http.MethodGet, "/api/v1/spaces", nil, &ss); err != nil {
				return err
			}
			return printSpaces(cmd, cf, ss)
		},
	}
	get := &cobra.Command{
		Use: "space:get NAME", Short: "Show a space and your role in it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var s spaceView
			if err := c.do(http.MethodGet, "/api/v1/spaces/"+url.PathEscape(args[0]), nil, &s); err != nil {
				return err
			}
			return printSpaces(cmd, cf, []spaceView{s})
		},
	}
	del := &cobra.Command{
		Use: "space:delete NAME", Short: "Delete an empty space (never root)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			if err := c.do(http.MethodDelete, "/api/v1/spaces/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted space %s.\n", args[0])
			return nil
		},
	}
	return []*cobra.Command{add, list, get, del}
}

func printSpaces(cmd *cobra.Command, cf *clientFlags, ss []spaceView) error {
	if cf.format == "json" {
		if len(ss) == 1 && cmd.Name() != "space:list" {
			return printJSON(cmd.OutOrStdout(), ss[0])
		}
		return printJSON(cmd.OutOrStdout(), ss)
	}
	var rows [][]string
	for _, s := range ss {
		rows = append(rows, []string{s.Name, s.Parent, strconv.FormatBool(s.Inherit), s.Role, s.Description})
	}
	table(cmd.OutOrStdout(), []string{"NAME", "PARENT", "INHERIT", "YOUR ROLE", "DESCRIPTION"}, rows)
	return nil
}
