package cli

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/glenv/glenv/internal/config"
	"github.com/glenv/glenv/internal/server"
)

func newServe(getenv Env) *cobra.Command {
	var cfg config.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the glenv server (API, webhooks, jobs and environments)",
		Long: `Run the glenv server. With no flags it keeps everything in a SQLite database
in the data dir and listens on 127.0.0.1:8080. Every flag can also be set as
GLENV_<FLAG>, e.g. GLENV_DATABASE_URL=postgres://….`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(cfg, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			return srv.Run(ctx)
		},
	}
	cfg.Bind(cmd.Flags(), getenv)
	return cmd
}

func newLogger(cfg config.Config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
