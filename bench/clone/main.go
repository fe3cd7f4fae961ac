// Command clone measures cloning an environment's files (services.files)
// from its parent with glenv's data.CloneDir against `cp -a`, on the same
// tree in the same run: by default 500 MB in 20,000 files, as in the goal
// (≤ 1.1× cp -a). Rounds alternate between the two; medians are reported.
//
//	go run ./bench/clone [-size 500MB] [-files 20000] [-rounds 3] [-dir /var/tmp]
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/glenv/glenv/internal/data"
)

func main() {
	size := flag.String("size", "500MB", "total size of the tree (KB, MB, GB)")
	files := flag.Int("files", 20000, "number of files")
	rounds := flag.Int("rounds", 3, "measurements of each")
	base := flag.String("dir", "", "where to build the tree (default: the system temp dir); its filesystem decides whether reflinks work")
	flag.Parse()
	total, err := parseSize(*size)
	must(err)
	root, err := os.MkdirTemp(*base, "bench-clone-")
	must(err)
	defer os.RemoveAll(root)
	src := filepath.Join(root, "src")
	must(makeTree(src, total, *files))

	var cp, clone []time.Duration
	var stats data.Stats
	runCp := func(i int) {
		dst := filepath.Join(root, "cp-"+strconv.Itoa(i))
		settle()
		start := time.Now()
		out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
		if err != nil {
			must(fmt.Errorf("cp -a: %v: %s", err, out))
		}
		cp = append(cp, time.Since(start))
		must(os.RemoveAll(dst))
	}
	runClone := func(i int) {
		dst := filepath.Join(root, "clone-"+strconv.Itoa(i))
		settle()
		start := time.Now()
		var err error
		stats, err = data.CloneDir(context.Background(), src, dst)
		must(err)
		clone = append(clone, time.Since(start))
		must(os.RemoveAll(dst))
	}
	for i := range *rounds {
		// Alternate who goes first, so neither always pays for the
		// other's writeback.
		if i%2 == 0 {
			runCp(i)
			runClone(i)
		} else {
			runClone(i)
			runCp(i)
		}
	}
	c, g := med(cp), med(clone)
	fs, _ := exec.Command("stat", "-f", "-c", "%T", root).Output()
	fmt.Printf("clone: %s in %d files on %s, median of %d\n", *size, *files, strings.TrimSpace(string(fs)), *rounds)
	fmt.Printf("  cp -a            %9s\n", c)
	fmt.Printf("  glenv CloneDir   %9s   (%s)\n", g, stats)
	ratio := float64(g) / float64(c)
	fmt.Printf("  glenv / cp -a    %.2f× (goal ≤ 1.1×): %s\n", ratio, verdict(ratio <= 1.1))
}

// makeTree writes n files of random sizes adding up to total bytes, in
// directories of 100 files, with incompressible contents.
func makeTree(dir string, total int64, n int) error {
	r := rand.New(rand.NewPCG(1, 2))
	weights := make([]float64, n)
	var sum float64
	for i := range weights {
		weights[i] = r.ExpFloat64()
		sum += weights[i]
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		size := int64(weights[i] / sum * float64(total))
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("f%05d.bin", i)))
		if err != nil {
			return err
		}
		for size > 0 {
			k := min(size, int64(len(buf)))
			off := r.IntN(len(buf) - int(k) + 1)
			if _, err := f.Write(buf[off : off+int(k)]); err != nil {
				return err
			}
			size -= k
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// settle writes dirty pages back before a measurement, so each starts
// from the same state (the source tree stays in the page cache).
func settle() {
	_ = exec.Command("sync").Run()
}

func parseSize(s string) (int64, error) {
	units := map[string]int64{"KB": 1e3, "MB": 1e6, "GB": 1e9, "K": 1e3, "M": 1e6, "G": 1e9}
	for suffix, mul := range units {
		if n, ok := strings.CutSuffix(strings.ToUpper(s), suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			return int64(v * float64(mul)), err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/clone:", err)
		os.Exit(1)
	}
}
