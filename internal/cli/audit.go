package cli

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func auditCommands(cf *clientFlags, getenv Env) []*cobra.Command {
	var limit int
	var before int64
	list := &cobra.Command{
		Use: "audit:list", Short: "Show who changed what, when and from where, newest first (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(getenv)
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/api/v1/audit?limit=%d", limit)
			if before > 0 {
				path += fmt.Sprintf("&before=%d", before)
			}
			var evs []struct {
				ID         int64     `json:"id"`
				At         time.Time `json:"at"`
				Actor      string    `json:"actor"`
				Action     string    `json:"action"`
				Target     string    `json:"target"`
				Detail     string    `json:"detail"`
				RemoteAddr string    `json:"remote_addr"`
			}
			if err := c.do(http.MethodGet, path, nil, &evs); err != nil {
				return err
			}
			if cf.format == "json" {
				return printJSON(cmd.OutOrStdout(), evs)
			}
			var rows [][]string
			for _, e := range evs {
				rows = append(rows, []string{strconv.FormatInt(e.ID, 10), fmtTime(e.At), e.Actor, e.Action, e.Target, e.Detail, e.RemoteAddr})
			}
			table(cmd.OutOrStdout(), []string{"ID", "AT", "WHO", "ACTION", "TARGET", "DETAIL", "FROM"}, rows)
			return nil
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, "how many events, 1–1000")
	list.Flags().Int64Var(&before, "before", 0, "only events older than this id (paging)")
	return []*cobra.Command{list}
}
