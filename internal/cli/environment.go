package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/glenv/glenv/internal/api"
	"github.com/glenv/glenv/internal/api/view"
	"github.com/glenv/glenv/internal/gitsha"
	"github.com/glenv/glenv/internal/store"
)

type envView = view.Environment

// resolveEnv finds an environment by name within an integration; with no
// --integration it uses the only integration there is.
func resolveEnv(c *client, integ, name string) (envView, error) {
	q := url.Values{"name": {name}}
	if integ != "" {
		q.Set("integration", integ)
	}
	var envs []envView
	if err := c.do(http.MethodGet, "/api/v1/environments?"+q.Encode(), nil, &envs); err != nil {
		return envView{}, err
	}
	switch len(envs) {
	case 0:
		if integ == "" {
			return envView{}, fmt.Errorf("no environment named %q (see glenv environment:list)", name)
		}
		return envView{}, fmt.Errorf("no environment named %q in integration %s (see glenv environment:list --integration %s)", name, integ, integ)
	case 1:
		return envs[0], nil
	}
	return envView{}, fmt.Errorf("%d integrations have an environment named %q: pass --integration", len(envs), name)
}

func environmentCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	var integ string
	addInteg := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVarP(&integ, "integration", "i", "", "integration the environment belongs to (needed when several have the name)")
		return c
	}
	// envCmd builds a command on one environment, resolved by name.
	envCmd := func(use, short string, run func(cmd *cobra.Command, c *client, e envView) error) *cobra.Command {
		return addInteg(&cobra.Command{
			Use: use + " ENVIRONMENT", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := cf.client(getenv)
				if err != nil {
					return err
				}
				e, err := resolveEnv(c, integ, args[0])
				if err != nil {
					return err
				}
				return run(cmd, c, e)
			},
		})
	}
	list := addInteg(&cobra.Command{
		Use: "environment:list", Short: "List environments", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			path := "/api/v1/environments"
			if integ != "" {
				path += "?integration=" + url.QueryEscape(integ)
			}
			var envs []envView
			if err := c.do(http.MethodGet, path, nil, &envs); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), envs)
			}
			var rows [][]string
			for _, e := range envs {
				rows = append(rows, []string{e.Name, e.Integration, e.State, e.Parent, gitsha.Short(e.HeadSHA), gitsha.Short(e.DeployedSHA), e.URL})
			}
			table(cmd.OutOrStdout(), []string{"NAME", "INTEGRATION", "STATE", "PARENT", "HEAD", "DEPLOYED", "URL"}, rows)
			return nil
		},
	})
	get := envCmd("environment:get", "Show an environment", func(cmd *cobra.Command, c *client, e envView) error {
		return printEnv(cmd, cf, e)
	})
	urlCmd := envCmd("environment:url", "Print an environment's URL", func(cmd *cobra.Command, c *client, e envView) error {
		if cf.format == "json" {
			return printJSON(cmd.OutOrStdout(), map[string]string{"url": e.URL})
		}
		fmt.Fprintln(cmd.OutOrStdout(), e.URL)
		return nil
	})
	op := func(name, short string) *cobra.Command {
		return envCmd("environment:"+name, short, func(cmd *cobra.Command, c *client, e envView) error {
			method, path := http.MethodPost, fmt.Sprintf("/api/v1/environments/%d/%s", e.ID, name)
			if name == "delete" {
				method, path = http.MethodDelete, fmt.Sprintf("/api/v1/environments/%d", e.ID)
			}
			var out envView
			if err := c.do(method, path, nil, &out); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Environment %s: %s requested (state %s). Follow it with: glenv activity:list --environment %s\n", cell(e.Name), name, cell(out.State), cell(e.Name))
			return nil
		})
	}
	var follow bool
	logs := envCmd("environment:logs", "Print the environment's app output (or, before it runs, its latest deploy log)", func(cmd *cobra.Command, c *client, e envView) error {
		var offset int64
		for {
			if follow {
				// A server that streams (Kubernetes: the pod's log,
				// followed) answers without a next offset and ends
				// when the pod does; one that pages answers a page.
				hdr, err := c.streamText(cmd.Context(), fmt.Sprintf("/api/v1/environments/%d/logs?offset=%d&follow=1", e.ID, offset), cmd.OutOrStdout())
				if errors.Is(err, context.Canceled) {
					return nil
				}
				if err != nil {
					return err
				}
				next := hdr.Get(api.HeaderNextOffset)
				if next == "" {
					return nil
				}
				n, _ := strconv.ParseInt(next, 10, 64)
				if n != offset {
					offset = n
					continue // a page: more may be waiting right now
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(followPoll):
				}
				continue
			}
			out, hdr, err := c.getText(fmt.Sprintf("/api/v1/environments/%d/logs?offset=%d", e.ID, offset))
			if err != nil {
				return err
			}
			if offset == 0 && out == "" && !follow {
				return printDeployLog(cmd, c, e)
			}
			fmt.Fprint(cmd.OutOrStdout(), out)
			offset = nextOffset(hdr, offset, out)
			if out != "" {
				continue // a page: more may be waiting right now
			}
			if !follow {
				return nil
			}
			select {
			case <-cmd.Context().Done():
				return nil
			case <-time.After(followPoll):
			}
		}
	})
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	var syncData bool
	syncCmd := envCmd("environment:sync", "Refresh an environment from its parent: --data clones the parent's data again", func(cmd *cobra.Command, c *client, e envView) error {
		if !syncData {
			return errors.New("say what to sync: --data (the code follows its branch; use environment:redeploy to rebuild it)")
		}
		var out envView
		if err := c.do(http.MethodPost, fmt.Sprintf("/api/v1/environments/%d/sync-data", e.ID), nil, &out); err != nil {
			return err
		}
		if cf.format == "json" {
			return printJSON(cmd.OutOrStdout(), out)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Environment %s: data sync from %s requested (state %s).\n", cell(e.Name), cell(e.Parent), cell(out.State))
		return nil
	})
	syncCmd.Flags().BoolVar(&syncData, "data", false, "clone the parent's data (files and databases) again, then redeploy")
	return []*cobra.Command{list, get, urlCmd,
		op("activate", "Activate an inactive environment: deploy it with its parent's data"),
		op("deactivate", "Stop an environment's app and keep it inactive"),
		op("redeploy", "Deploy the environment's head again"),
		op("delete", "Delete an environment (never the default branch's)"),
		op("pause", "Stop an active environment's app and keep its build and data; the next visit or environment:resume starts it"),
		op("resume", "Start a paused environment again from its build"),
		syncCmd, logs}
}

func printEnv(cmd *cobra.Command, cf *clientFlags, e envView) error {
	if cf.format == "json" {
		return printJSON(cmd.OutOrStdout(), e)
	}
	rows := [][]string{{"id", strconv.FormatInt(e.ID, 10)}, {"name", e.Name}, {"integration", e.Integration},
		{"kind", e.Kind}, {"state", e.State}, {"gitlab_state", e.GitLabState}, {"ref", e.Ref}, {"parent", e.Parent},
		{"head_sha", e.HeadSHA}, {"deployed_sha", e.DeployedSHA}, {"slug", e.Slug}, {"tier", e.Tier},
		{"detached", fmt.Sprint(e.Detached)}, {"created_at", fmtTime(e.CreatedAt)}, {"updated_at", fmtTime(e.UpdatedAt)},
		{"url", e.URL}}
	if p := e.Prebuild; p != nil {
		// "ready" only when the prebuild is of the current head.
		words := p.Status + " for " + gitsha.Short(p.SHA)
		if p.Ready {
			words = "ready for the head " + gitsha.Short(p.SHA) + ": activating reuses it"
		}
		rows = append(rows, []string{"prebuild", words})
	}
	table(cmd.OutOrStdout(), []string{"PROPERTY", "VALUE"}, rows)
	return nil
}

func activityCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	var integ, env string
	var limit int
	list := &cobra.Command{
		Use: "activity:list", Short: "List activities, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if integ != "" {
				q.Set("integration", integ)
			}
			if env != "" {
				e, err := resolveEnv(c, integ, env)
				if err != nil {
					return err
				}
				q.Set("environment_id", strconv.FormatInt(e.ID, 10))
			}
			var acts []view.Activity
			if err := c.do(http.MethodGet, "/api/v1/activities?"+q.Encode(), nil, &acts); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), acts)
			}
			var rows [][]string
			for _, a := range acts {
				rows = append(rows, []string{strconv.FormatInt(a.ID, 10), a.Kind, a.State, a.Integration, a.Environment,
					gitsha.Short(a.SHA), fmtTime(a.CreatedAt), oneLine(a.Description)})
			}
			table(cmd.OutOrStdout(), []string{"ID", "KIND", "STATE", "INTEGRATION", "ENVIRONMENT", "SHA", "CREATED", "DESCRIPTION"}, rows)
			return nil
		},
	}
	list.Flags().StringVarP(&integ, "integration", "i", "", "only this integration's activities")
	list.Flags().StringVarP(&env, "environment", "e", "", "only this environment's activities")
	list.Flags().IntVar(&limit, "limit", 50, "how many, 1–1000")
	get := &cobra.Command{
		Use: "activity:get ID", Short: "Show an activity", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var a view.Activity
			if err := c.do(http.MethodGet, "/api/v1/activities/"+url.PathEscape(args[0]), nil, &a); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), a)
			}
			table(cmd.OutOrStdout(), []string{"PROPERTY", "VALUE"}, [][]string{{"id", strconv.FormatInt(a.ID, 10)},
				{"kind", a.Kind}, {"state", a.State}, {"result", a.Result}, {"integration", a.Integration},
				{"environment", a.Environment}, {"sha", a.SHA}, {"delivery_id", strconv.FormatInt(a.DeliveryID, 10)},
				{"description", a.Description}, {"created_at", fmtTime(a.CreatedAt)}, {"started_at", fmtTime(a.StartedAt)},
				{"completed_at", fmtTime(a.CompletedAt)}})
			return nil
		},
	}
	var follow bool
	logCmd := &cobra.Command{
		Use: "activity:log ID", Short: "Print an activity's log", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			return printActivityLog(cmd, c, args[0], follow)
		},
	}
	logCmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the activity completes")
	return []*cobra.Command{list, get, logCmd}
}

func tokenCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	var name, role, scope, expiresAt string
	create := &cobra.Command{
		Use: "token:create", Short: "Create an API token with at most your roles; the value is printed once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var out struct {
				store.APIToken
				Token string `json:"token"`
			}
			if err := c.do(http.MethodPost, "/api/v1/tokens", map[string]string{"name": name, "role": role, "scope": scope, "expires_at": expiresAt}, &out); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			table(cmd.OutOrStdout(), []string{"PROPERTY", "VALUE"}, [][]string{{"id", strconv.FormatInt(out.ID, 10)},
				{"name", out.Name}, {"role", out.Role}, {"token", out.Token}})
			fmt.Fprintln(cmd.ErrOrStderr(), "Store the token now: it is not shown again.")
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for, e.g. ci-bot")
	create.Flags().StringVar(&role, "role", "member", "admin or member (admin only for admins)")
	create.Flags().StringVar(&scope, "scope", "api", "api (read and write) or read_api (reads only), as GitLab's scopes")
	create.Flags().StringVar(&expiresAt, "expires-at", "", "date the token stops working, YYYY-MM-DD (default: never)")
	list := &cobra.Command{
		Use: "token:list", Short: "List API tokens (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var ts []store.APIToken
			if err := c.do(http.MethodGet, "/api/v1/tokens", nil, &ts); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), ts)
			}
			var rows [][]string
			for _, t := range ts {
				state := "active"
				if !t.RevokedAt.IsZero() {
					state = "revoked"
				}
				rows = append(rows, []string{strconv.FormatInt(t.ID, 10), t.Name, t.Role, t.Prefix + "…", state, fmtTime(t.CreatedAt)})
			}
			table(cmd.OutOrStdout(), []string{"ID", "NAME", "ROLE", "PREFIX", "STATE", "CREATED"}, rows)
			return nil
		},
	}
	revoke := &cobra.Command{
		Use: "token:revoke ID", Short: "Revoke an API token (admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			if err := c.do(http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked token %s.\n", args[0])
			return nil
		},
	}
	return []*cobra.Command{create, list, revoke}
}

// printDeployLog prints the log of the environment's latest deploy.
func printDeployLog(cmd *cobra.Command, c *client, e envView) error {
	var acts []view.Activity
	if err := c.do(http.MethodGet, fmt.Sprintf("/api/v1/activities?environment_id=%d&kind=deploy&limit=1", e.ID), nil, &acts); err != nil {
		return err
	}
	if len(acts) == 0 {
		return errors.New("no deploy yet for " + e.Name)
	}
	return printActivityLog(cmd, c, strconv.FormatInt(acts[0].ID, 10), false)
}
