package nef_test

// No leaks: Close frees at once, finalizers free what is dropped, and the counts of C handles go
// back to where they were. (TestMain also checks that none is left after all the tests.)

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

func TestCloseFreesEveryHandle(t *testing.T) {
	base := settle()
	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
	nodes := []*nef.Node{a}
	for i := 0; i < 50; i++ {
		nodes = append(nodes, nef.Add(nodes[len(nodes)-1], a))
	}
	failedNode := nef.MatMul(a, nef.Tensor([]float32{1}, nil)) // holds no handle
	x := nef.Placeholder("x", []int{2, 2}, nef.Float32)
	path := filepath.Join(t.TempDir(), "m.nef")
	if err := nef.MatMul(x, nodes[len(nodes)-1]).Build(path); err != nil {
		t.Fatal(err)
	}
	g, err := nef.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := g.Run(map[string]*nef.Node{"x": a})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out["output"].Float32s(); err != nil {
		t.Fatal(err)
	}
	h := nef.LiveHandles()
	if got := h.Tensors - base.Tensors; got < int64(len(nodes))+3 || h.Graphs-base.Graphs != 1 {
		t.Errorf("live handles %+v, base %+v", h, base)
	}
	for _, n := range append(nodes, failedNode, x, out["output"]) {
		n.Close()
	}
	g.Close()
	// the Build's temporaries (the matmul node) were garbage; collect them
	if h, ok := waitForHandles(base, 5*time.Second); !ok {
		t.Errorf("after Close: %+v, base %+v", h, base)
	}
}

func TestFinalizersFreeDroppedHandles(t *testing.T) {
	base := settle()
	path := filepath.Join(t.TempDir(), "m.nef")
	func() {
		x := nef.Placeholder("x", []int{3}, nef.Float32)
		if err := nef.Exp(x).Build(path); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			g, err := nef.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; j < 200; j++ {
				v := nef.Tensor([]float32{float32(j), 1, 2}, nil)
				out, err := g.Run(map[string]*nef.Node{"x": nef.Relu(v)})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := nef.Sum(out["output"]).Item(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if h := nef.LiveHandles(); h.Tensors <= base.Tensors || h.Graphs <= base.Graphs {
			t.Logf("collected early: %+v", h)
		}
	}()
	if h, ok := waitForHandles(base, 10*time.Second); !ok {
		t.Errorf("finalizers left %+v, base %+v", h, base)
	}
}
