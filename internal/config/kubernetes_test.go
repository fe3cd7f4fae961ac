package config

import (
	"strings"
	"testing"
)

func TestKubernetesClientLimitsAndWorkers(t *testing.T) {
	for _, tc := range []struct {
		name               string
		env                map[string]string
		args               []string
		qps, burst, worker int
		err                string
	}{
		{name: "defaults let a burst of environments through and run 8 jobs on the process runtime",
			qps: DefaultKubernetesQPS, burst: DefaultKubernetesBurst, worker: DefaultWorkers},
		{name: "on Kubernetes deploys mostly wait, so more run at once", args: []string{"--runtime", "kubernetes"},
			qps: DefaultKubernetesQPS, burst: DefaultKubernetesBurst, worker: DefaultKubernetesWorkers},
		{name: "workers given win over the runtime's default", args: []string{"--runtime", "kubernetes", "--workers", "16"},
			qps: DefaultKubernetesQPS, burst: DefaultKubernetesBurst, worker: 16},
		{name: "limits from the environment", env: map[string]string{"GLENV_KUBERNETES_QPS": "50", "GLENV_KUBERNETES_BURST": "300"},
			qps: 50, burst: 300, worker: DefaultWorkers},
		{name: "qps 0 turns the client-side limit off", args: []string{"--kubernetes-qps", "0", "--kubernetes-burst", "0"}, worker: DefaultWorkers},
		{name: "a negative qps is refused", args: []string{"--kubernetes-qps", "-5"}, err: "--kubernetes-qps -5: must be 0"},
		{name: "a limit without a burst is refused", args: []string{"--kubernetes-burst", "0"}, err: "--kubernetes-burst 0: must be at least 1"},
		{name: "negative workers are refused", args: []string{"--workers", "-1"}, err: "--workers -1: must be 0"},
		{name: "workers not a number", env: map[string]string{"GLENV_WORKERS": "many"}, err: "--workers from GLENV_WORKERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/h"}
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := parse(t, env, tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.KubernetesQPS != tc.qps || c.KubernetesBurst != tc.burst || c.Workers != tc.worker {
				t.Fatalf("qps %d burst %d workers %d, want %d %d %d", c.KubernetesQPS, c.KubernetesBurst, c.Workers, tc.qps, tc.burst, tc.worker)
			}
		})
	}
}

func TestAConfigBuiltInCodeGetsTheKubernetesDefaults(t *testing.T) {
	c := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), EnvDomain: "localhost", ReconcileInterval: 1 << 40,
		JobRescueAfter: 1 << 40, LogLevel: "info", LogFormat: "text", Runtime: "kubernetes", KubernetesFetchImage: "busybox:1.37"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.KubernetesQPS != DefaultKubernetesQPS || c.KubernetesBurst != DefaultKubernetesBurst || c.Workers != DefaultKubernetesWorkers || c.KubernetesVolumeClone != "auto" {
		t.Fatalf("qps %d burst %d workers %d", c.KubernetesQPS, c.KubernetesBurst, c.Workers)
	}
}
