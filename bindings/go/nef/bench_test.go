package nef_test

// Benchmarks (not run by go test without -bench; see bench/README.md): the cost the Go layer
// adds per op and per run, and Graph.Run from parallel goroutines.
//
//	cd bindings/go && go test -run XXX -bench . ./nef

import (
	"path/filepath"
	"testing"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

// Creating one node: pins, the lock, typed attributes, the C call, shape and dtype.
func BenchmarkOpCreation(b *testing.B) {
	x := nef.Tensor(make([]float32, 64), []int{8, 8})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := nef.Softmax(nef.MatMul(x, x), -1)
		n.Close()
	}
}

// A small lazy graph executed and read, warm plan cache.
func BenchmarkExecuteSmall(b *testing.B) {
	x := nef.Tensor(make([]float32, 64), []int{8, 8})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := nef.Softmax(nef.MatMul(x, x), -1)
		if _, err := n.Float32s(); err != nil {
			b.Fatal(err)
		}
		n.Close()
	}
}

func mlpGraph(b *testing.B) (*nef.Graph, *nef.Node) {
	x := nef.Placeholder("x", []int{16, 256}, nef.Float32)
	w1 := nef.RandomNormal([]int{256, 512}, 1, 0, 0.05, nef.Float32)
	w2 := nef.RandomNormal([]int{512, 64}, 2, 0, 0.05, nef.Float32)
	if err := nef.Evaluate(w1, w2); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "mlp.nef")
	if err := nef.Softmax(nef.MatMul(nef.Gelu(nef.MatMul(x, w1)), w2), -1).Build(path); err != nil {
		b.Fatal(err)
	}
	g, err := nef.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	return g, nef.RandomUniform([]int{16, 256}, 3, -1, 1, nef.Float32)
}

func runOnce(b *testing.B, g *nef.Graph, in *nef.Node) {
	out, err := g.Run(map[string]*nef.Node{"x": in})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := out["output"].Float32s(); err != nil {
		b.Fatal(err)
	}
	out["output"].Close()
}

// One goroutine running a 16x256 -> 512 -> 64 MLP.
func BenchmarkGraphRunSerial(b *testing.B) {
	g, in := mlpGraph(b)
	defer g.Close()
	runOnce(b, g, in)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runOnce(b, g, in)
	}
}

// The same from GOMAXPROCS goroutines (runs proceed in parallel).
func BenchmarkGraphRunParallel(b *testing.B) {
	g, in := mlpGraph(b)
	defer g.Close()
	runOnce(b, g, in)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			runOnce(b, g, in)
		}
	})
}
