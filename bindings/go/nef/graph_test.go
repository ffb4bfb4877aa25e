package nef_test

// Graph files: build with placeholders, load, run; named outputs, embedded plans; ONNX import
// from bytes with symbolic dims; run-time input checks.

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

// reluONNX is Relu over x [n, 2] with a symbolic n (bytes written by onnx.helper; the same model
// tests/c/c_api_test.c uses).
var reluONNX = []byte{
	8, 8, 58, 61, 10, 12, 10, 1, 120, 18, 1, 121, 34, 4, 82, 101, 108, 117,
	18, 1, 103, 90, 20, 10, 1, 120, 18, 15, 10, 13, 8, 1, 18, 9, 10, 3,
	18, 1, 110, 10, 2, 8, 2, 98, 20, 10, 1, 121, 18, 15, 10, 13, 8, 1,
	18, 9, 10, 3, 18, 1, 110, 10, 2, 8, 2, 66, 4, 10, 0, 16, 17}

func TestBuildLoadRun(t *testing.T) {
	r := newRand(t)
	dir := t.TempDir()
	w := f32(randFloats(r, 5*3, -1, 1))
	x := nef.Placeholder("x", []int{4, 5}, nef.Float32)
	idx := nef.Placeholder("idx", []int{2}, nef.Int64)
	h := nef.Tanh(nef.MatMul(x, nef.Tensor(w, []int{5, 3})))
	picked := nef.Gather(h, idx, 0)
	path := filepath.Join(dir, "two.nef")
	if err := nef.Build(path, map[string]*nef.Node{"picked": picked, "h": h}, nef.EmbedPlan()); err != nil {
		t.Fatal(err)
	}
	nef.ResetStats()
	g, err := nef.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if st, _ := nef.Stats(); st["embedded_plans_used"] != 1 {
		t.Errorf("the embedded plan was not used: %v", st)
	}
	if !equalSlices(g.Inputs(), []string{"x", "idx"}) && !equalSlices(g.Inputs(), []string{"idx", "x"}) {
		t.Errorf("inputs %v", g.Inputs())
	}
	if !equalSlices(g.Outputs(), []string{"h", "picked"}) {
		t.Errorf("outputs %v (Build orders them by name)", g.Outputs())
	}
	for _, it := range g.InputTypes() {
		if it.Name == "x" && (it.DType != nef.Float32 || !equalSlices(it.Shape, []int{4, 5}) || it.DimNames[0] != "") {
			t.Errorf("input type %+v", it)
		}
		if it.Name == "idx" && (it.DType != nef.Int64 || !equalSlices(it.Shape, []int{2})) {
			t.Errorf("input type %+v", it)
		}
	}
	xv := f32(randFloats(r, 20, -2, 2))
	// a lazy input is executed before the run
	lazyX := nef.Mul(nef.Tensor(xv, []int{4, 5}), nef.Scalar(1, nef.Float32))
	out, err := g.Run(map[string]*nef.Node{"x": lazyX, "idx": nef.Tensor([]int64{3, -4}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := matmulRef(widen(xv), widen(w), 4, 5, 3)
	for i := range want {
		want[i] = math.Tanh(want[i])
	}
	expectShape(t, out["h"], 4, 3)
	expectClose(t, "h", must(t, out["h"]), want, 1e-5, 1e-6)
	expectClose(t, "picked", must(t, out["picked"]), append(append([]float64{}, want[9:12]...), want[0:3]...), 1e-5, 1e-6)
	if !out["h"].IsMaterialized() || !lazyX.IsMaterialized() {
		t.Error("outputs and executed inputs are materialized")
	}
	// outputs feed further ops and other runs
	s := must(t, nef.Sum(out["h"]))
	total := 0.0
	for _, v := range want {
		total += v
	}
	expectClose(t, "sum of an output", s, []float64{total}, 1e-5, 1e-5)

	// input checks
	var se *nef.ShapeError
	if _, err := g.Run(map[string]*nef.Node{"x": nef.Tensor(xv[:15], []int{3, 5}), "idx": nef.Tensor([]int64{0, 1}, nil)}); !errors.As(err, &se) {
		t.Errorf("wrong shape: %v", err)
	}
	var te *nef.TypeError
	if _, err := g.Run(map[string]*nef.Node{"x": nef.Tensor(widen(xv), []int{4, 5}), "idx": nef.Tensor([]int64{0, 1}, nil)}); !errors.As(err, &te) {
		t.Errorf("wrong dtype: %v", err)
	}
	var ve *nef.ValidationError
	if _, err := g.Run(map[string]*nef.Node{"x": nef.Tensor(xv, []int{4, 5}), "idx": nef.Tensor([]int64{0, 9}, nil)}); !errors.As(err, &ve) {
		t.Errorf("index out of range: %v", err)
	}
	// a single output is named "output"; Save writes a loaded graph again
	single := filepath.Join(dir, "one.nef")
	if err := nef.Softmax(x, -1).Build(single); err != nil {
		t.Fatal(err)
	}
	g1, err := nef.Load(single)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSlices(g1.Outputs(), []string{"output"}) {
		t.Errorf("outputs %v", g1.Outputs())
	}
	again := filepath.Join(dir, "again.nef")
	if err := g1.Save(again); err != nil {
		t.Fatal(err)
	}
	g1.Close()
	if err := g1.Close(); err != nil {
		t.Error("closing twice:", err)
	}
	g2, err := nef.Load(again)
	if err != nil {
		t.Fatal(err)
	}
	o, err := g2.Run(map[string]*nef.Node{"x": nef.Tensor(xv, []int{4, 5})})
	if err != nil {
		t.Fatal(err)
	}
	row := must(t, nef.Sum(o["output"], 1))
	expectClose(t, "softmax rows", row, []float64{1, 1, 1, 1}, 1e-6, 0)
	g2.Close()
}

func TestONNXFromBytes(t *testing.T) {
	g, err := nef.FromONNXBytes(reluONNX, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	types := g.InputTypes()
	if len(types) != 1 || types[0].Name != "x" || !equalSlices(types[0].Shape, []int{-1, 2}) ||
		!equalSlices(types[0].DimNames, []string{"n", ""}) || types[0].String() != "x [n 2] float32" {
		t.Fatalf("input types %+v", types)
	}
	// each run binds n from its input
	for _, n := range []int{1, 3, 6} {
		v := make([]float32, 2*n)
		for i := range v {
			v[i] = float32(i) - float32(n)
		}
		out, err := g.Run(map[string]*nef.Node{"x": nef.Tensor(v, []int{n, 2})})
		if err != nil {
			t.Fatal(err)
		}
		y := out["y"]
		expectShape(t, y, n, 2)
		want := make([]float64, len(v))
		for i, x := range v {
			want[i] = math.Max(float64(x), 0)
		}
		expectClose(t, "relu", must(t, y), want, 0, 0)
	}
	var ve *nef.ValidationError
	if err := g.Save(filepath.Join(t.TempDir(), "unbound.nef")); !errors.As(err, &ve) {
		t.Errorf("saving with an unbound dim: %v", err)
	}
	// bound at import: a static graph that saves and loads
	gb, err := nef.FromONNXBytes(reluONNX, map[string]int{"n": 2})
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	if it := gb.InputTypes()[0]; !equalSlices(it.Shape, []int{2, 2}) {
		t.Errorf("bound input type %+v", it)
	}
	path := filepath.Join(t.TempDir(), "relu.nef")
	if err := gb.Save(path, nef.EmbedPlan()); err != nil {
		t.Fatal(err)
	}
	gl, err := nef.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer gl.Close()
	out, err := gl.Run(map[string]*nef.Node{"x": nef.Tensor([]float32{-1, 2, -3, 4}, []int{2, 2})})
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "relu from a saved import", must(t, out["y"]), []float64{0, 2, 0, 4}, 0, 0)
	var se *nef.ShapeError
	if _, err := gb.Run(map[string]*nef.Node{"x": nef.Tensor([]float32{1, 2, 3, 4, 5, 6}, []int{3, 2})}); !errors.As(err, &se) {
		t.Errorf("a shape against the bound dim: %v", err)
	}
}
