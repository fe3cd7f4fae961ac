package kube_test

import (
	"os"
	"testing"

	"github.com/glenv/glenv/internal/kube/kubetest"
)

// One control plane for the package: each test uses namespaces of its own.
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
