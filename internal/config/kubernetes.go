package config

import "fmt"

// Defaults of the Kubernetes client's limits and of the job workers, for a
// Config built in code rather than from flags.
const (
	// DefaultKubernetesQPS and DefaultKubernetesBurst: client-go's own
	// default (5/s, bursts of 10) would queue a burst of merge requests
	// behind glenv's limiter; a new environment costs about 6 requests, so
	// the bucket takes a burst of about 160 environments at once and
	// 1,000 within 30 s. The API server's priority and fairness still
	// protects it from glenv.
	DefaultKubernetesQPS   = 200
	DefaultKubernetesBurst = 1000
	// DefaultWorkers runs jobs on the process runtime, where a deploy
	// builds and starts an app on this machine.
	DefaultWorkers = 8
	// DefaultKubernetesWorkers runs jobs on Kubernetes, where a deploy
	// mostly waits for the cluster to roll the Deployment out: with 8, a
	// burst of 1,000 new environments took minutes (BenchmarkBurstOfEnvironments).
	DefaultKubernetesWorkers = 128
)

// validateKubernetes checks the Kubernetes client's limits and the workers,
// and fills the workers' default for the runtime.
func (c *Config) validateKubernetes() error {
	if c.bound == nil && c.KubernetesQPS == 0 && c.KubernetesBurst == 0 {
		// Built in code without Bind: the defaults.
		c.KubernetesQPS, c.KubernetesBurst = DefaultKubernetesQPS, DefaultKubernetesBurst
	}
	if c.KubernetesQPS < 0 {
		return fmt.Errorf("--kubernetes-qps %d: must be 0 (no client-side limit) or more, e.g. 200", c.KubernetesQPS)
	}
	if c.KubernetesQPS > 0 && c.KubernetesBurst < 1 {
		return fmt.Errorf("--kubernetes-burst %d: must be at least 1 (requests at once), e.g. 1000", c.KubernetesBurst)
	}
	if c.Workers < 0 {
		return fmt.Errorf("--workers %d: must be 0 (the runtime's default) or more, e.g. 8", c.Workers)
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
		if c.Runtime == "kubernetes" {
			c.Workers = DefaultKubernetesWorkers
		}
	}
	return nil
}
