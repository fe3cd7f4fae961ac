package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type userView struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	IsAdmin  bool   `json:"is_admin"`
	Roles    []struct {
		Space string `json:"space"`
		Role  string `json:"role"`
	} `json:"roles"`
	Connections []struct {
		Host     string `json:"host"`
		Username string `json:"username"`
		State    string `json:"state"`
	} `json:"connections"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

func (u userView) row() []string {
	var roles, conns []string
	for _, r := range u.Roles {
		roles = append(roles, r.Space+":"+r.Role)
	}
	for _, c := range u.Connections {
		s := c.Host + "/" + c.Username
		if c.State != "connected" {
			s += " (" + strings.ReplaceAll(c.State, "_", " ") + ")"
		}
		conns = append(conns, s)
	}
	return []string{strconv.FormatInt(u.ID, 10), u.Username, strconv.FormatBool(u.IsAdmin), strings.Join(roles, ","), strings.Join(conns, ","), fmtTime(u.LastSeenAt)}
}

var userHeader = []string{"ID", "USERNAME", "ADMIN", "ROLES", "CONNECTIONS", "LAST SEEN"}

// userPath names a user by id or host/username in a URL path.
func userPath(ref string) string { return "/api/v1/users/" + url.PathEscape(ref) }

func userCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	list := &cobra.Command{
		Use: "user:list", Short: "List users (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var us []userView
			if err := c.do(http.MethodGet, "/api/v1/users", nil, &us); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), us)
			}
			var rows [][]string
			for _, u := range us {
				rows = append(rows, u.row())
			}
			table(cmd.OutOrStdout(), userHeader, rows)
			return nil
		},
	}
	get := &cobra.Command{
		Use: "user:get USER", Short: "Show a user (id or host/username): roles and GitLab connections", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var u userView
			if err := c.do(http.MethodGet, userPath(args[0]), nil, &u); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), u)
			}
			table(cmd.OutOrStdout(), userHeader, [][]string{u.row()})
			return nil
		},
	}
	var space, role string
	grant := &cobra.Command{
		Use: "user:grant USER", Short: "Give USER a role (read, write, admin) in a space and every space below", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			if err := c.do(http.MethodPut, userPath(args[0])+"/grants/"+url.PathEscape(space), map[string]string{"role": role}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s has %s in space %s.\n", args[0], role, space)
			return nil
		},
	}
	grant.Flags().StringVar(&space, "space", "root", "the space")
	grant.Flags().StringVar(&role, "role", "", "read, write or admin")
	var revokeSpace string
	revoke := &cobra.Command{
		Use: "user:revoke USER", Short: "Take USER's role in a space away", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			if err := c.do(http.MethodDelete, userPath(args[0])+"/grants/"+url.PathEscape(revokeSpace), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s has no role of its own in space %s any more.\n", args[0], revokeSpace)
			return nil
		},
	}
	revoke.Flags().StringVar(&revokeSpace, "space", "root", "the space")
	var admin bool
	update := &cobra.Command{
		Use: "user:update USER", Short: "Make USER an admin (--admin) or not (--admin=false)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("admin") {
				return fmt.Errorf("--admin: say --admin or --admin=false")
			}
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var u userView
			if err := c.do(http.MethodPatch, userPath(args[0]), map[string]bool{"admin": admin}, &u); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s admin: %v.\n", args[0], u.IsAdmin)
			return nil
		},
	}
	update.Flags().BoolVar(&admin, "admin", false, "glenv admin")
	remove := &cobra.Command{
		Use: "user:remove USER", Short: "Remove a user: sessions, connections, roles and tokens go with them (admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			if err := c.do(http.MethodDelete, userPath(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed user %s.\n", args[0])
			return nil
		},
	}
	return []*cobra.Command{list, get, grant, revoke, update, remove}
}
