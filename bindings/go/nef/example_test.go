package nef_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

// The seed's Go example (NEF-README "Go API"), verbatim but for the import path.
func Example() {
	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
	b := nef.Tensor([]float32{5, 6, 7, 8}, []int{2, 2})

	c := nef.MatMul(a, b)
	c.Execute()

	fmt.Println(c.Numpy())
	// Output:
	// [[19. 22.]
	//  [43. 50.]]
}

// Errors are typed; a node carries the first error of its inputs, so a chain is checked once.
func Example_errors() {
	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
	v := nef.Tensor([]float32{1, 2, 3}, nil)
	d := nef.Softmax(nef.MatMul(a, v), -1) // the matmul fails; softmax passes its error on

	var shapeErr *nef.ShapeError
	if err := d.Execute(); errors.As(err, &shapeErr) {
		fmt.Println("shape error:", shapeErr.Message)
	}
	var base *nef.Error
	fmt.Println(errors.As(d.Err(), &base), base.Code)
	// Output:
	// shape error: [matmul] inner dimensions differ: (2, 2) @ (3,)
	// true NEFShapeError
}

// Build a graph with a named input, load it, run it.
func ExampleGraph_Run() {
	dir, _ := os.MkdirTemp("", "nef-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.nef")

	x := nef.Placeholder("x", []int{2, 2}, nef.Float32)
	w := nef.Tensor([]float32{5, 6, 7, 8}, []int{2, 2})
	if err := nef.Softmax(nef.MatMul(x, w), -1).Build(path); err != nil {
		fmt.Println(err)
		return
	}
	g, err := nef.Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	fmt.Println(g.Inputs(), g.Outputs(), g.InputTypes()[0])

	out, err := g.Run(map[string]*nef.Node{"x": nef.Tensor([]float32{1, 0, 0, 1}, []int{2, 2})})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out["output"].Numpy())
	// Output:
	// [x] [output] x [2 2] float32
	// [[0.26894143 0.7310586 ]
	//  [0.26894143 0.7310586 ]]
}

// Any registered op by name, with its attributes.
func ExampleOp() {
	x := nef.Tensor([]float32{1, 2, 3, 4, 5, 6}, []int{2, 3})
	padded := nef.Op("pad", []*nef.Node{x}, nef.Attrs{"pads": []int{0, 1, 0, 1}, "value": -1.0})
	fmt.Println(padded.Shape(), padded.DType())
	fmt.Println(padded.Numpy())
	// Output:
	// [2 5] float32
	// [[-1.  1.  2.  3. -1.]
	//  [-1.  4.  5.  6. -1.]]
}
