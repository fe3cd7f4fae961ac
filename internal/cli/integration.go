package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/glenv/glenv/internal/integration"
	"github.com/glenv/glenv/internal/limits"
)

// integrationFlags are the settable fields of add and update.
type integrationFlags struct {
	in     integration.Input
	labels []string
	yes    bool
	// string and bool flags that are sent only when given
	userFacingURL, space, description, buildTags, environmentAccess, pauseAfter  string
	maxMemory, maxDisk                                                           string
	maxProcesses, connectionLimit                                                int
	maxCPU                                                                       float64
	fetch, prune, buildMRs, buildDraftMRs, cloneParentData, buildForks, prebuild bool
}

func (f *integrationFlags) bind(fs *pflag.FlagSet, add bool) {
	fs.StringVar(&f.in.Token, "token", "", "GitLab access token with the api scope")
	fs.StringVar(&f.in.BaseURL, "base-url", "", "GitLab API host URL, may be internal (default https://gitlab.com)")
	fs.StringVar(&f.userFacingURL, "user-facing-url", "", "GitLab URL for links shown to people (default: --base-url)")
	fs.StringVar(&f.space, "space", "root", "space the integration belongs to")
	fs.StringVar(&f.environmentAccess, "environment-access", "public", "who may open its environments: public, signed-in, or members (Reporter or above on the GitLab project)")
	fs.StringArrayVar(&f.labels, "label", nil, "label (repeatable), e.g. --label team:web")
	fs.StringVar(&f.description, "description", "", "markdown description")
	fs.BoolVar(&f.fetch, "fetch-branches", true, "create an environment for every branch")
	fs.BoolVar(&f.prune, "prune-branches", true, "delete environments whose branch is gone")
	fs.BoolVar(&f.buildMRs, "build-merge-requests", true, "create an active environment for every merge request")
	fs.BoolVar(&f.buildDraftMRs, "build-draft-merge-requests", true, "also build draft merge requests")
	fs.BoolVar(&f.cloneParentData, "merge-requests-clone-parent-data", true, "clone the parent's data into merge request environments")
	fs.StringVar(&f.buildTags, "build-tags", "", "glob of tags that get environments, e.g. v* (default off)")
	fs.BoolVar(&f.buildForks, "build-forks", false, "build merge requests from forks")
	fs.BoolVar(&f.prebuild, "prebuild-branches", false, "build the head of inactive branch environments on every push, without running it, so activating one starts at once")
	fs.StringVar(&f.pauseAfter, "pause-after", "off", "pause an active environment after this long without a request, e.g. 4h or 2d; the next visit wakes it")
	fs.StringVar(&f.maxMemory, "environment-max-memory", "0", "the most limits.memory an environment of this integration may ask for, e.g. 2G; 0 = the server's --environment-max-memory")
	fs.IntVar(&f.maxProcesses, "environment-max-processes", 0, "the most limits.processes an environment of this integration may ask for; 0 = the server's")
	fs.Float64Var(&f.maxCPU, "environment-max-cpu", 0, "the most limits.cpu an environment of this integration may ask for, e.g. 0.5; 0 = the server's")
	fs.StringVar(&f.maxDisk, "environment-max-disk", "0", "the most limits.disk an environment of this integration may ask for, e.g. 5G; 0 = the server's")
	fs.IntVar(&f.connectionLimit, "services-database-connection-limit", 0, "connections each environment of this integration may hold to one of its databases: the default and the most connection_limit may ask for; 0 = the server's")
	fs.BoolVarP(&f.yes, "yes", "y", false, "answer yes to questions (prune-branches deletions)")
	if add {
		fs.StringVar(&f.in.Type, "type", "", "integration type: gitlab")
		fs.StringVar(&f.in.GitLabProject, "gitlab-project", "", "GitLab project path (group/project) or numeric id")
		fs.StringVar(&f.in.Name, "name", "", "integration name, a-z 0-9 '-' up to 36 (default: from the project path); immutable")
	}
}

// input returns what the user gave; on update only the flags set are sent.
func (f *integrationFlags) input(fs *pflag.FlagSet) integration.Input {
	in := f.in
	str := func(name string, v string) *string {
		if fs.Changed(name) {
			return &v
		}
		return nil
	}
	bl := func(name string, v bool) *bool {
		if fs.Changed(name) {
			return &v
		}
		return nil
	}
	in.UserFacingURL, in.Space, in.Description, in.BuildTags = str("user-facing-url", f.userFacingURL), str("space", f.space), str("description", f.description), str("build-tags", f.buildTags)
	in.EnvironmentAccess = str("environment-access", f.environmentAccess)
	in.FetchBranches, in.PruneBranches, in.BuildMergeRequests = bl("fetch-branches", f.fetch), bl("prune-branches", f.prune), bl("build-merge-requests", f.buildMRs)
	in.BuildDraftMergeRequests, in.MergeRequestsCloneParentData, in.BuildForks = bl("build-draft-merge-requests", f.buildDraftMRs), bl("merge-requests-clone-parent-data", f.cloneParentData), bl("build-forks", f.buildForks)
	in.PauseAfter = str("pause-after", f.pauseAfter)
	in.PrebuildBranches = bl("prebuild-branches", f.prebuild)
	in.EnvironmentMaxMemory, in.EnvironmentMaxDisk = str("environment-max-memory", f.maxMemory), str("environment-max-disk", f.maxDisk)
	if fs.Changed("environment-max-processes") {
		in.EnvironmentMaxProcesses = &f.maxProcesses
	}
	if fs.Changed("environment-max-cpu") {
		in.EnvironmentMaxCPU = &f.maxCPU
	}
	if fs.Changed("services-database-connection-limit") {
		in.ServicesDatabaseConnectionLimit = &f.connectionLimit
	}
	if fs.Changed("label") {
		in.Labels = f.labels
		if in.Labels == nil {
			in.Labels = []string{}
		}
	}
	in.Confirm = f.yes
	return in
}

func integrationCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	var addF, updF integrationFlags
	add := &cobra.Command{
		Use:   "integration:add",
		Short: "Connect a GitLab project: check the token, install the webhook, create environments",
		Example: `  glenv integration:add --type=gitlab --token glpat-… --base-url https://gitlab.example.com \
    --gitlab-project group/app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			in := addF.input(cmd.Flags())
			var res integration.Result
			err = c.do(http.MethodPost, "/api/v1/integrations", in, &res)
			var ae *apiError
			if errors.As(err, &ae) && ae.status == http.StatusConflict && strings.Contains(ae.msg, "--yes") {
				if err := json.Unmarshal(ae.body, &res); err != nil {
					return err
				}
				if !confirm(cmd, res.WouldDelete) {
					return errors.New("nothing changed: prune-branches would delete environments; re-run with --yes to accept, or pass --prune-branches=false")
				}
				in.Confirm = true
				err = c.do(http.MethodPost, "/api/v1/integrations", in, &res)
			}
			if err != nil {
				return err
			}
			return printIntegration(cmd, cf, res)
		},
	}
	addF.bind(add.Flags(), true)

	list := &cobra.Command{
		Use: "integration:list", Short: "List integrations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var res []integration.Result
			if err := c.do(http.MethodGet, "/api/v1/integrations", nil, &res); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			var rows [][]string
			for _, r := range res {
				in := r.Integration
				rows = append(rows, []string{in.Name, in.Type, in.ProjectPath, in.BaseURL, in.Space, strings.Join(in.Labels, ","), r.HookURL})
			}
			table(cmd.OutOrStdout(), []string{"NAME", "TYPE", "PROJECT", "BASE URL", "SPACE", "LABELS", "HOOK URL"}, rows)
			return nil
		},
	}

	var showSecret bool
	get := &cobra.Command{
		Use: "integration:get NAME", Short: "Show an integration", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var res integration.Result
			path := "/api/v1/integrations/" + args[0]
			if showSecret {
				path += "?show_secret=true"
			}
			if err := c.do(http.MethodGet, path, nil, &res); err != nil {
				return err
			}
			return printIntegration(cmd, cf, res)
		},
	}
	get.Flags().BoolVar(&showSecret, "show-secret", false, "include the webhook secret (admin tokens only)")

	update := &cobra.Command{
		Use: "integration:update NAME", Short: "Change an integration's options, token or URLs (never its name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var res integration.Result
			if err := c.do(http.MethodPatch, "/api/v1/integrations/"+args[0], updF.input(cmd.Flags()), &res); err != nil {
				return err
			}
			return printIntegration(cmd, cf, res)
		},
	}
	updF.bind(update.Flags(), false)

	del := &cobra.Command{
		Use: "integration:delete NAME", Short: "Delete an integration and its webhook; its environments are kept, detached", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var res struct {
				Deleted  string   `json:"deleted"`
				Warnings []string `json:"warnings"`
			}
			if err := c.do(http.MethodDelete, "/api/v1/integrations/"+args[0], nil, &res); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted integration %s; its environments are kept, detached.\n", res.Deleted)
			return nil
		},
	}

	validate := &cobra.Command{
		Use: "integration:validate NAME", Short: "Re-check token, role and webhook; repair the webhook", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var checks []integration.Check
			if err := c.do(http.MethodPost, "/api/v1/integrations/"+args[0]+"/validate", nil, &checks); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), checks)
			}
			var rows [][]string
			bad := 0
			for _, ch := range checks {
				status := "ok"
				switch {
				case ch.Repaired:
					status = "repaired"
				case !ch.OK:
					status = "PROBLEM"
					bad++
				}
				rows = append(rows, []string{ch.Name, status, ch.Problem, ch.Fix})
			}
			table(cmd.OutOrStdout(), []string{"CHECK", "STATUS", "PROBLEM", "FIX"}, rows)
			if bad > 0 {
				return fmt.Errorf("%d problem(s) need a fix (see FIX)", bad)
			}
			return nil
		},
	}
	return []*cobra.Command{add, list, get, update, del, validate}
}

// confirm asks before prune-branches deletes environments.
func confirm(cmd *cobra.Command, envs []string) bool {
	out := cmd.ErrOrStderr()
	fmt.Fprintf(out, "prune-branches will delete %d environment(s) whose branch no longer exists:\n", len(envs))
	for _, e := range envs {
		fmt.Fprintln(out, "  -", cell(e))
	}
	fmt.Fprint(out, "Delete them? [y/N] ")
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

func printIntegration(cmd *cobra.Command, cf *clientFlags, res integration.Result) error {
	w := cmd.OutOrStdout()
	if cf.format == "json" {
		return printJSON(w, res)
	}
	for _, warn := range res.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", warn)
	}
	in := res.Integration
	rows := [][]string{
		{"name", in.Name}, {"type", in.Type}, {"base_url", in.BaseURL}, {"user_facing_url", in.UserFacingURL},
		{"gitlab_project", in.ProjectPath}, {"project_id", fmt.Sprint(in.ProjectID)}, {"default_branch", in.DefaultBranch},
		{"space", in.Space}, {"labels", strings.Join(in.Labels, ", ")}, {"description", oneLine(in.Description)},
		{"fetch_branches", fmt.Sprint(in.FetchBranches)}, {"prune_branches", fmt.Sprint(in.PruneBranches)},
		{"build_merge_requests", fmt.Sprint(in.BuildMergeRequests)}, {"build_draft_merge_requests", fmt.Sprint(in.BuildDraftMergeRequests)},
		{"merge_requests_clone_parent_data", fmt.Sprint(in.MergeRequestsCloneParentData)}, {"build_tags", in.BuildTags},
		{"build_forks", fmt.Sprint(in.BuildForks)}, {"hook_id", fmt.Sprint(in.HookID)}, {"token_expires_at", in.TokenExpiresAt},
		{"pause_after", in.PauseAfter.String()}, {"prebuild_branches", fmt.Sprint(in.PrebuildBranches)},
		{"environment_max_memory", ceiling(limits.FormatSize(int64(in.MaxMemory)), in.MaxMemory == 0)},
		{"environment_max_processes", ceiling(fmt.Sprint(in.MaxProcesses), in.MaxProcesses == 0)},
		{"environment_max_cpu", ceiling(fmt.Sprint(in.MaxCPU), in.MaxCPU == 0)},
		{"environment_max_disk", ceiling(limits.FormatSize(int64(in.MaxDisk)), in.MaxDisk == 0)},
		{"services_database_connection_limit", ceiling(fmt.Sprint(in.DatabaseConnectionLimit), in.DatabaseConnectionLimit == 0)},
	}
	if len(res.Environments) > 0 {
		rows = append(rows, []string{"environments_created", strings.Join(res.Environments, ", ")})
	}
	if res.WebhookSecret != "" {
		rows = append(rows, []string{"webhook_secret", res.WebhookSecret})
	}
	rows = append(rows, []string{"hook_url", res.HookURL})
	table(w, []string{"PROPERTY", "VALUE"}, rows)
	return nil
}

// ceiling shows an integration ceiling, or that the server's applies.
func ceiling(v string, serverWide bool) string {
	if serverWide {
		return "server's"
	}
	return v
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
