# A hostile app for glenv's tests: it serves HTTP on $PORT and, depending
# on $PROBE, attacks the host through its own data directory while glenv
# deploys next to it. GET / answers "<probe> <rounds>", rounds being how
# many times the attack went round (the test waits for it to start).
import http.server
import os
import shutil
import subprocess
import threading
import time

probe = os.environ.get("PROBE", "quiet")
host = os.environ.get("HOST_TREE", "/nonexistent")
data = os.environ.get("GLENV_DATA_DIR", "/data")
uploads = os.environ.get("GLENV_FILES_UPLOADS", data + "/files/uploads")
rounds = 0
result = ""


def make_pairs(n):
    names = []
    for i in range(n):
        d = os.path.join(uploads, "d%d" % i)
        try:
            # The app before this one may have stopped half-way through a swap.
            if os.path.islink(d):
                os.unlink(d)
            if os.path.isdir(d + ".away") and not os.path.exists(d):
                os.rename(d + ".away", d)
            os.makedirs(os.path.join(d, "sub"), exist_ok=True)
            with open(os.path.join(d, "f"), "w") as f:
                f.write("own data")
        except OSError:
            pass
        names.append(d)
    return names


def swap(names):
    """Swap each directory for a symlink to the host tree and back, for ever."""
    global rounds
    while True:
        for d in names:
            try:
                os.rename(d, d + ".away")
                os.symlink(host, d)
            except OSError:
                pass
        for d in names:
            try:
                os.unlink(d)
                os.rename(d + ".away", d)
            except OSError:
                pass
        rounds += 1


def attack():
    global rounds, result
    if probe == "swap":
        swap(make_pairs(300))
    elif probe == "parent":
        for name, target in (("shadow", host + "/secret"), ("hostdir", host)):
            try:
                os.symlink(target, os.path.join(uploads, name))
            except FileExistsError:
                pass
        with open(os.path.join(uploads, "own.txt"), "w") as f:
            f.write("the parent's own file")
        swap(make_pairs(50))
    elif probe == "linkfiles":
        files = os.path.join(data, "files")
        if not os.path.islink(files):
            shutil.rmtree(files)
            os.symlink(host, files)
        rounds = 1
    elif probe == "conns":
        # Many connections to the environment's own database at once.
        procs = [subprocess.Popen([os.environ["PSQL"], os.environ["DATABASE_URL"], "-Atc", "select pg_sleep(120)"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(int(os.environ.get("CONNS", "50")))]
        refused = 0
        time.sleep(0.2)
        deadline = time.time() + 60
        pending = list(procs)
        # Refused ones exit at once; held ones sleep on.
        while pending and time.time() < deadline:
            for p in list(pending):
                if p.poll() is not None:
                    pending.remove(p)
                    if b"too many connections for role" in p.stderr.read():
                        refused += 1
            if len(procs) - len(pending) >= len(procs) - int(os.environ.get("LIMIT", "0")):
                break
            time.sleep(0.1)
        result = "held=%d refused=%d" % (len(pending), refused)
        rounds = 1
    else:
        rounds = 1


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s %d %s" % (probe, rounds, result)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


threading.Thread(target=attack, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
