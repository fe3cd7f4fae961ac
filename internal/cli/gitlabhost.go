package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

type hostView struct {
	Host        string   `json:"host"`
	URL         string   `json:"url"`
	ClientID    string   `json:"client_id"`
	RedirectURL string   `json:"redirect_url"`
	Scopes      []string `json:"scopes"`
	SignInURL   string   `json:"sign_in_url"`
}

func gitlabHostCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	var in struct {
		URL          string `json:"url"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	add := &cobra.Command{
		Use:   "gitlab-host:add",
		Short: "Register a GitLab instance people sign in with (admin); checks the client id and secret first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var h hostView
			if err := c.do(http.MethodPost, "/api/v1/gitlab-hosts", in, &h); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), h)
			}
			table(cmd.OutOrStdout(), []string{"PROPERTY", "VALUE"}, [][]string{{"host", h.Host}, {"url", h.URL},
				{"client_id", h.ClientID}, {"redirect_url", h.RedirectURL}, {"scopes", strings.Join(h.Scopes, " ")}, {"sign_in_url", h.SignInURL}})
			fmt.Fprintf(cmd.ErrOrStderr(), "In GitLab's application form use the redirect URL %s and tick the scopes %s (api is not needed: glenv does not act for people).\n",
				h.RedirectURL, strings.Join(h.Scopes, ", "))
			return nil
		},
	}
	add.Flags().StringVar(&in.URL, "url", "", "GitLab instance URL, e.g. https://gitlab.example.com")
	add.Flags().StringVar(&in.ClientID, "client-id", "", "the application's Application ID")
	add.Flags().StringVar(&in.ClientSecret, "client-secret", "", "the application's Secret (stored encrypted; never shown again)")
	list := &cobra.Command{
		Use: "gitlab-host:list", Short: "List registered GitLab hosts (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			var hs []hostView
			if err := c.do(http.MethodGet, "/api/v1/gitlab-hosts", nil, &hs); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), hs)
			}
			var rows [][]string
			for _, h := range hs {
				rows = append(rows, []string{h.Host, h.URL, h.ClientID, h.SignInURL})
			}
			table(cmd.OutOrStdout(), []string{"HOST", "URL", "CLIENT ID", "SIGN IN"}, rows)
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "gitlab-host:remove HOST", Short: "Remove a GitLab host and every connection to it (admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			if err := c.do(http.MethodDelete, "/api/v1/gitlab-hosts/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed GitLab host %s.\n", args[0])
			return nil
		},
	}
	return []*cobra.Command{add, list, remove}
}
