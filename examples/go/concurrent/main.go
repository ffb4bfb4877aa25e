// Concurrent: one loaded graph served from many goroutines. Graph.Run calls run in parallel
// (they share the compiled plan, each run has its own buffers); every result is checked
// against a sequential run of the same input.
//
//	cd examples/go && go run ./concurrent -goroutines 8 -runs 50
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

const batch, in, hidden, out = 16, 64, 256, 10

func randomTensor(r *rand.Rand, shape ...int) *nef.Node {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * 0.1
	}
	return nef.Tensor(v, shape)
}

func main() {
	goroutines := flag.Int("goroutines", 8, "concurrent callers")
	runs := flag.Int("runs", 50, "runs per goroutine")
	flag.Parse()

	// An MLP with one named input: softmax(gelu(x @ w1 + b1) @ w2 + b2).
	r := rand.New(rand.NewSource(1))
	x := nef.Placeholder("x", []int{batch, in}, nef.Float32)
	h := nef.Gelu(nef.Add(nef.MatMul(x, randomTensor(r, in, hidden)), randomTensor(r, hidden)))
	y := nef.Softmax(nef.Add(nef.MatMul(h, randomTensor(r, hidden, out)), randomTensor(r, out)), -1)
	dir, err := os.MkdirTemp("", "nef-concurrent")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mlp.nef")
	if err := y.Build(path, nef.EmbedPlan()); err != nil {
		log.Fatal(err)
	}
	g, err := nef.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	// Inputs and their sequential results.
	inputs := make([]*nef.Node, *goroutines)
	want := make([][]float32, *goroutines)
	for i := range inputs {
		inputs[i] = randomTensor(r, batch, in)
		res, err := g.Run(map[string]*nef.Node{"x": inputs[i]})
		if err != nil {
			log.Fatal(err)
		}
		if want[i], err = res["output"].Float32s(); err != nil {
			log.Fatal(err)
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	mismatches := make([]int, *goroutines)
	for i := 0; i < *goroutines; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for k := 0; k < *runs; k++ {
				res, err := g.Run(map[string]*nef.Node{"x": inputs[i]})
				if err != nil {
					log.Fatal(err)
				}
				got, err := res["output"].Float32s()
				if err != nil {
					log.Fatal(err)
				}
				res["output"].Close()
				for j := range got {
					if got[j] != want[i][j] {
						mismatches[i]++
						break
					}
				}
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	bad := 0
	for _, m := range mismatches {
		bad += m
	}
	fmt.Printf("%d goroutines x %d runs: %d results differ from the sequential run\n", *goroutines, *runs, bad)
	fmt.Fprintf(os.Stderr, "%.1f runs/s\n", float64(*goroutines**runs)/elapsed.Seconds())
	if bad > 0 {
		os.Exit(1)
	}
}
