package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/glenv/glenv/internal/config"
)

// client calls the glenv API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an error answer of the API; body is its decoded JSON.
type apiError struct {
	status int
	msg    string
	body   []byte
}

func (e *apiError) Error() string { return e.msg }

func (cf *clientFlags) client(getenv Env) (*client, error) {
	if cf.format != "table" && cf.format != "json" {
		return nil, fmt.Errorf("--format %q: must be table or json", cf.format)
	}
	u, err := url.Parse(cf.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: must be the glenv server's URL, e.g. http://127.0.0.1:8080", cf.server)
	}
	token := cf.token
	if token == "" {
		token = getenv("GLENV_API_TOKEN")
	}
	if token == "" {
		token = localAdminToken(getenv)
	}
	if token == "" {
		return nil, errors.New("no API token: pass --api-token or set GLENV_API_TOKEN (a fresh server writes one to <data-dir>/admin-token)")
	}
	return &client{base: strings.TrimRight(cf.server, "/"), token: token, http: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// localAdminToken reads the admin token a local server wrote on first start,
// so a single-machine setup works without copying it around.
func localAdminToken(getenv Env) string {
	dir := getenv(config.EnvName("data-dir"))
	if dir == "" {
		var c config.Config
		dir = c.DefaultDataDir(getenv)
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (c *client) do(method, path string, in, out any) error {
	return c.doWith(method, path, in, out, nil)
}

// doWith is do that also hands back the answer's headers (when hdr is set).
func (c *client) doWith(method, path string, in, out any, hdr *http.Header) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the glenv server at %s: %v (is `glenv serve` running? see --server)", c.base, err)
	}
	defer resp.Body.Close()
	if hdr != nil {
		*hdr = resp.Header
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &apiError{status: resp.StatusCode, msg: msg, body: raw}
	}
	if out == nil {
		return nil
	}
	if s, ok := out.(*string); ok {
		*s = string(raw)
		return nil
	}
	return json.Unmarshal(raw, out)
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows with aligned columns; every cell is escaped (see cell),
// so one row of data is always one line.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = cell(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
