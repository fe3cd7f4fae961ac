package runtime

import (
	"reflect"
	"strings"
	"testing"
)

// Mount tables as kernels show them (shortened to the cgroup lines).
const (
	mountsV1 = `35 25 0:30 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
36 35 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 35 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 35 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 35 0:34 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`
	selfV1 = `8:pids:/
4:memory:/process_api/b95d
1:cpu:/
0::/`
	mountsV1Combined = `36 35 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
37 35 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 35 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids`
	selfV1Combined = `8:pids:/system.slice/glenv.service
4:memory:/system.slice/glenv.service
2:cpu,cpuacct:/system.slice/glenv.service`
	mountsV2 = `30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate`
	selfV2   = `0::/system.slice/glenv.service`
	// In a container the hierarchy's root is glenv's own cgroup.
	mountsV2Container = `30 25 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw`
	selfV2Container   = `0::/docker/abc/init`
)

func TestPlanCgroups(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		mounts, own string
		want        cgroupPlan
		err         string
	}{
		{"cgroup v1 puts glenv's cgroups under its own in the memory, pids and cpu hierarchies", mountsV1, selfV1,
			cgroupPlan{bases: []string{"/sys/fs/cgroup/memory/process_api/b95d/g", "/sys/fs/cgroup/pids/g", "/sys/fs/cgroup/cpu/g"}}, ""},
		{"cgroup v1 finds cpu where it is mounted with cpuacct", mountsV1Combined, selfV1Combined,
			cgroupPlan{bases: []string{"/sys/fs/cgroup/memory/system.slice/glenv.service/g", "/sys/fs/cgroup/pids/system.slice/glenv.service/g", "/sys/fs/cgroup/cpu,cpuacct/system.slice/glenv.service/g"}}, ""},
		{"cgroup v2 uses the one tree", mountsV2, selfV2,
			cgroupPlan{v2: true, bases: []string{"/sys/fs/cgroup/system.slice/glenv.service/g"}}, ""},
		{"cgroup v2 in a container counts from the mount's root", mountsV2Container, selfV2Container,
			cgroupPlan{v2: true, bases: []string{"/sys/fs/cgroup/init/g"}}, ""},
		{"no pids controller means no cgroups", strings.ReplaceAll(mountsV1, "rw,pids", "rw,freezer"), selfV1,
			cgroupPlan{}, "no cgroup v1 pids controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planCgroups(tc.mounts, tc.own, "g")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDiskVerdict(t *testing.T) {
	t.Parallel()
	const G = 1 << 30
	for _, tc := range []struct {
		name      string
		use       []*envDisk
		free, res int64
		want      map[int]string // uid → substring of the reason
	}{
		{"an environment within its limit is left alone", []*envDisk{{uid: 1, bytes: G, limit: 2 * G}}, 10 * G, G, map[int]string{}},
		{"an environment over its limit is stopped", []*envDisk{{uid: 1, bytes: 3 * G, limit: 2 * G}, {uid: 2, bytes: G, limit: 2 * G}}, 10 * G, G,
			map[int]string{1: "its disk holds 3G, over its limit of 2G (limits.disk in .glenv.yml)"}},
		{"under glenv's reserve the environment using the most is stopped", []*envDisk{{uid: 2, bytes: G, limit: 2 * G}, {uid: 1, bytes: G / 2, limit: 2 * G}}, G / 2, G,
			map[int]string{2: "its own disk has only 512M free, under the reserve of 1G"}},
		{"under the reserve an environment over its limit is not named twice", []*envDisk{{uid: 1, bytes: 3 * G, limit: 2 * G}}, 0, G,
			map[int]string{1: "over its limit"}},
		{"under the reserve with nothing written nobody is stopped", []*envDisk{{uid: 1}}, 0, G, map[int]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diskVerdict(tc.use, tc.free, tc.res)
			if len(got) != len(tc.want) {
				t.Fatalf("stops %v, want %v", got, tc.want)
			}
			for uid, want := range tc.want {
				if !strings.Contains(got[uid], want) {
					t.Fatalf("uid %d: %q, want %q", uid, got[uid], want)
				}
			}
		})
	}
}
