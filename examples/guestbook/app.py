"""A small guestbook for glenv's examples and end-to-end tests.

Entries live in PostgreSQL ($DATABASE_URL), uploads in a files service
($GLENV_FILES_UPLOADS). It uses only Python's standard library and the
psql client, so it runs anywhere glenv does; a real app would use a driver
such as psycopg.
"""
import html
import http.server
import os
import pathlib
import subprocess
import sys
import urllib.parse

DB = os.environ.get("DATABASE_URL", "")
UPLOADS = pathlib.Path(os.environ.get("GLENV_FILES_UPLOADS", "uploads"))
TITLE = os.environ.get("GUESTBOOK_TITLE", "guestbook")


def sql(query, *args):
    """Runs one statement through psql; args are passed as psql variables."""
    cmd = ["psql", DB, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
    for i, a in enumerate(args):
        cmd += ["-v", f"a{i}={a}"]
    out = subprocess.run(cmd, input=query, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def migrate():
    sql("CREATE TABLE IF NOT EXISTS entries (id serial PRIMARY KEY, name text NOT NULL)")


class Handler(http.server.BaseHTTPRequestHandler):
    # Keep-alive, so glenv's proxy reuses its connection to the app; and
    # no Nagle's algorithm, or the body (a second send after the header)
    # waits for an ACK that a reused connection delays: 44 ms a request.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def reply(self, status, body, kind="text/html; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            sql("SELECT 1")
            return self.reply(200, "ok\n", "text/plain")
        names = sql("SELECT name FROM entries ORDER BY id")
        files = sorted(p.name for p in UPLOADS.iterdir()) if UPLOADS.exists() else []
        body = f"<h1>{html.escape(TITLE)}</h1><ul>"
        body += "".join(f"<li class=entry>{html.escape(n)}</li>" for n in names)
        body += "</ul><ul>" + "".join(f"<li class=file>{html.escape(f)}</li>" for f in files) + "</ul>"
        self.reply(200, body)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length)
        if url.path == "/sign" and q.get("name"):
            sql("INSERT INTO entries (name) VALUES (:'a0')", q["name"][0])
            return self.reply(201, "signed\n", "text/plain")
        if url.path == "/upload" and q.get("name"):
            name = pathlib.Path(q["name"][0]).name
            (UPLOADS / name).write_bytes(payload)
            return self.reply(201, "stored\n", "text/plain")
        self.reply(404, "not found\n", "text/plain")

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    migrate()
    if command == "sanitize":
        # Run by glenv after cloning the parent's data (hooks.clone).
        sql("UPDATE entries SET name = 'guest ' || id")
        print("sanitized", sql("SELECT count(*) FROM entries")[0], "entries")
        return
    port = int(os.environ["PORT"])
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
