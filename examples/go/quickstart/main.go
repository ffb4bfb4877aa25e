// Quickstart: the seed's example, then a graph file with a named input, errors and stats.
//
//	cd examples/go && go run ./quickstart
package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

func main() {
	// The seed's example.
	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
	b := nef.Tensor([]float32{5, 6, 7, 8}, []int{2, 2})

	c := nef.MatMul(a, b) // a graph node; nothing ran
	c.Execute()           // optimize -> plan -> compile -> run

	fmt.Println(c.Numpy())

	// A deployable graph with a named input: build, load, run.
	dir, err := os.MkdirTemp("", "nef-quickstart")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.nef")
	x := nef.Placeholder("x", []int{2, 2}, nef.Float32)
	y := nef.Softmax(nef.MatMul(x, b), -1)
	if err := y.Build(path); err != nil {
		log.Fatal(err)
	}
	g, err := nef.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	out, err := g.Run(map[string]*nef.Node{"x": nef.Tensor([]float32{1, 0, 0, 1}, []int{2, 2})})
	if err != nil {
		log.Fatal(err)
	}
	probs, _ := out["output"].Float32s()
	fmt.Printf("%v -> %v %.4f\n", g.InputTypes()[0], g.Outputs(), probs)

	// Errors are typed, and a chain carries its first error to the end.
	bad := nef.Relu(nef.MatMul(a, nef.Tensor([]float32{1, 2, 3}, nil)))
	var shapeErr *nef.ShapeError
	if err := bad.Execute(); errors.As(err, &shapeErr) {
		fmt.Println("caught:", err)
	}

	// A computed value is kept: reading it again does not execute again.
	nef.ResetStats()
	d := nef.Sum(nef.Exp(c))
	d.Numpy()
	d.Numpy()
	stats, _ := nef.Stats()
	fmt.Println("graphs executed:", stats["graphs_executed"])
}
