package runtime

import (
	"slices"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/limits"
)

func TestSandboxCommandLine(t *testing.T) {
	t.Parallel()
	lim := limits.Limits{Memory: 64 << 20, Processes: 32, CPU: 1, Disk: 1 << 30}
	cg := &cgroup{dirs: []string{"/cg/memory/x", "/cg/pids/x", "/cg/cpu/x"}}
	j := job{shell: "serve", appDir: "/rt/builds/k", dataDir: "/rt/envs/1/data", uid: 200001, port: 4000}
	root := func() *sandbox {
		return &sandbox{bwrap: "bwrap", setpriv: "setpriv", prlimit: "prlimit", asRoot: true, net: &network{}}
	}
	ahead := j
	ahead.net = &netNS{}
	for _, tc := range []struct {
		name    string
		sb      *sandbox
		j       *job // default j
		cg      *cgroup
		want    []string // in this order
		without []string
		err     string
	}{
		{name: "under root every capability goes, the bounding set is emptied and the uid dropped before the command",
			sb: root(), cg: cg,
			want:    []string{"bwrap", "--cap-drop ALL --cap-add CAP_SETUID --cap-add CAP_SETGID --cap-add CAP_SETPCAP", "setpriv --reuid=200001 --regid=200001 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --", "/bin/sh -c serve"},
			without: []string{"--unshare-user", "prlimit"}},
		{name: "without root bwrap makes a user namespace and needs no setpriv",
			sb: &sandbox{bwrap: "bwrap", net: &network{}}, cg: cg,
			want:    []string{"--cap-drop ALL", "--unshare-user", "/bin/sh -c serve"},
			without: []string{"setpriv", "--cap-add"}},
		{name: "the command waits in a network namespace of its own until pasta connected it",
			sb: root(), cg: cg, want: []string{"--unshare-net --info-fd 3 --block-fd 4"}},
		{name: "in a namespace made ahead the command waits until pasta connected it, and bwrap makes no other",
			sb: root(), j: &ahead, cg: cg, want: []string{"--block-fd 3"}, without: []string{"--unshare-net", "--info-fd"}},
		{name: "without isolation the command shares the host's network",
			sb: &sandbox{bwrap: "bwrap", setpriv: "setpriv", prlimit: "prlimit", asRoot: true}, cg: cg, without: []string{"--unshare-net"}},
		{name: "the shim joins every controller's cgroup before bwrap runs",
			sb: root(), cg: cg,
			want:    []string{"glenv-cgroup /cg/memory/x/cgroup.procs /cg/pids/x/cgroup.procs /cg/cpu/x/cgroup.procs --", "bwrap"},
			without: []string{"prlimit"}},
		{name: "/tmp and /run are writable tmpfs and the data is writable",
			sb: root(), cg: cg, want: []string{"--perms 1777 --tmpfs /tmp --perms 1777 --tmpfs /run", "--ro-bind /rt/builds/k /app", "--bind /rt/envs/1/data /data"}},
		{name: "without cgroups prlimit limits each process, and says nothing of cpu",
			sb: root(), want: []string{"setpriv", "prlimit --as=67108864 --nproc=32 -- /bin/sh -c serve"}, without: []string{"glenv-cgroup"}},
		{name: "without cgroups and without prlimit the command is refused, saying what to install",
			sb:  &sandbox{bwrap: "bwrap", setpriv: "setpriv", asRoot: true, cgWhy: "no cgroup v1 pids controller is mounted"},
			err: "install util-linux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jj := j
			if tc.j != nil {
				jj = *tc.j
			}
			argv, err := tc.sb.argv(jj, lim, tc.cg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "no cgroup v1 pids controller") {
					t.Fatalf("got %q, %v; want an error with %q and why cgroups are unusable", argv, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			line := strings.Join(argv, " ")
			at := 0
			for _, w := range tc.want {
				i := strings.Index(line[at:], w)
				if i < 0 {
					t.Fatalf("want %q (in order) in\n%s", w, line)
				}
				at += i + len(w)
			}
			for _, w := range tc.without {
				if slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, w) }) {
					t.Fatalf("want no %q in\n%s", w, line)
				}
			}
		})
	}
}

func TestPastaArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		n       network
		port    int
		db      []int
		want    []string
		without []string
	}{
		{"glenv reaches the app's port on the host's loopback only", network{egress: true}, 4000, nil,
			[]string{"-t 127.0.0.1/4000"}, nil},
		{"the app reaches its database port and no other port of the host", network{egress: true}, 4000, []int{5432, 55432},
			[]string{"-T 5432,55432", "-u none", "-U none", "--no-map-gw"}, []string{"-T none"}},
		{"without a database no port of the host is reachable", network{egress: true}, 0, nil,
			[]string{"-t none", "-T none"}, nil},
		{"egress allowed configures the namespace's interface", network{egress: true}, 4000, nil,
			[]string{"--config-net"}, nil},
		{"egress denied leaves the interface down", network{}, 4000, nil,
			nil, []string{"--config-net"}},
		{"under root pasta keeps uid 0 and joins the network namespace glenv opened", network{asRoot: true}, 4000, nil,
			[]string{"--runas 0 --netns /proc/self/fd/3"}, []string{"--userns"}},
		{"without root it joins the sandbox's user namespace too", network{}, 4000, nil,
			[]string{"--userns /proc/self/fd/3 --netns /proc/self/fd/4"}, []string{"--runas"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := strings.Join(tc.n.args(tc.port, tc.db, "/pid"), " ")
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Fatalf("want %q in %s", w, line)
				}
			}
			for _, w := range tc.without {
				if strings.Contains(line, w) {
					t.Fatalf("want no %q in %s", w, line)
				}
			}
		})
	}
}

func TestDatabasePortsForwarded(t *testing.T) {
	t.Parallel()
	got := dbPorts([]string{
		"DATABASE_URL=postgres://a:b@127.0.0.1:55432/g1_main?sslmode=disable",
		"DATABASE_URL_MAIN=postgres://a:b@127.0.0.1:55432/g1_main",
		"DATABASE_URL_OTHER=postgres://a:b@localhost/g1_other",
		"DATABASE_URL_REMOTE=postgres://a:b@db.example.com:6543/x",
		"DATABASE_URL_V6=postgres://a:b@[::1]:7000/x",
		"OTHER_URL=postgres://a:b@127.0.0.1:9999/x",
	})
	if want := []int{55432, 5432, 7000}; !slices.Equal(got, want) {
		t.Fatalf("forwarded %v, want %v: loopback database ports once each, not a remote one, not another variable's", got, want)
	}
}
