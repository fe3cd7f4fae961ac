# A hostile app for glenv's isolation tests: on request it tries to escape
# its environment and answers what happened.
#   /connect?host=H&port=P  open a TCP connection ("connected" or the error)
#   /sh?cmd=C               run a shell command (exit status and output)
#   /alloc?mb=N             grow this process by N MiB
#   /listening              the ports /proc/net/tcp shows listening
import http.server, os, socket, subprocess, sys, urllib.parse

held = []

class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, text):
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        if u.path == "/connect":
            try:
                socket.create_connection((q["host"], int(q["port"])), timeout=3).close()
                self.answer("connected")
            except OSError as e:
                self.answer("failed: %s" % e)
        elif u.path == "/sh":
            p = subprocess.run(["/bin/sh", "-c", q["cmd"]], capture_output=True, text=True, timeout=60)
            self.answer("exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
        elif u.path == "/alloc":
            block = bytearray(int(q["mb"]) << 20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            held.append(block)
            self.answer("allocated")
        elif u.path == "/listening":
            ports = set()
            for f in ("/proc/net/tcp", "/proc/net/tcp6"):
                try:
                    for line in open(f).read().splitlines()[1:]:
                        fields = line.split()
                        if fields[3] == "0A":
                            ports.add(int(fields[1].split(":")[1], 16))
                except OSError:
                    pass
            self.answer(" ".join(str(p) for p in sorted(ports)))
        else:
            self.answer("probe " + sys.argv[1])

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
