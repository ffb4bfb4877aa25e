package nef_test

// Files from NEF's Python API (testdata/fixtures.py, run once with the repository's .venv):
// a .nef built in Python run from Go, all-MiniLM-L6-v2 imported from ONNX with the same output
// as Python's nef.from_onnx and ONNX Runtime, MiniLM's .nef, and numpy's printing.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

func TestNefFileBuiltInPython(t *testing.T) {
	dir := fixtures(t)
	g, err := nef.Load(filepath.Join(dir, "mlp.nef"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !equalSlices(g.Inputs(), []string{"x", "idx"}) || !equalSlices(g.Outputs(), []string{"probs", "hidden", "picked"}) {
		t.Fatalf("inputs %v outputs %v", g.Inputs(), g.Outputs())
	}
	types := g.InputTypes()
	if types[0].String() != "x [3 5] float32" || types[1].String() != "idx [2] int64" {
		t.Errorf("input types %v", types)
	}
	out, err := g.Run(map[string]*nef.Node{
		"x":   nodeOf(readNpy(t, filepath.Join(dir, "mlp_x.npy"))),
		"idx": nodeOf(readNpy(t, filepath.Join(dir, "mlp_idx.npy"))),
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := readNpy(t, filepath.Join(dir, "mlp_probs_ref.npy")).Float64s()
	expectShape(t, out["probs"], 3, 4)
	expectClose(t, "probs vs numpy float64", must(t, out["probs"]), ref, 1e-5, 1e-7)
	expectClose(t, "hidden vs numpy float64", must(t, out["hidden"]),
		readNpy(t, filepath.Join(dir, "mlp_hidden_ref.npy")).Float64s(), 1e-5, 1e-5)
	// idx = [2, -3]: rows 2 and 0
	expectClose(t, "picked vs numpy float64", must(t, out["picked"]), append(append([]float64{}, ref[8:12]...), ref[0:4]...), 1e-5, 1e-7)
	// the same engine on the same file and inputs: Go's result is Python's
	for _, name := range g.Outputs() {
		py := readNpy(t, filepath.Join(dir, "mlp_"+name+"_py.npy"))
		got, err := out[name].Value()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Shape) != fmt.Sprint(py.Shape) || got.DType != py.DType {
			t.Errorf("%s: Go %v %v, Python %v %v", name, got.Shape, got.DType, py.Shape, py.DType)
		}
		expectClose(t, name+" vs Python's run", got.Float64s(), py.Float64s(), 0, 0)
	}
}

// cosine and max abs difference of each row pair.
func compareRows(got, want []float64, cols int) (minCos, maxAbs float64) {
	minCos = 1
	for r := 0; r*cols < len(want); r++ {
		var dot, ng, nw float64
		for c := 0; c < cols; c++ {
			g, w := got[r*cols+c], want[r*cols+c]
			dot += g * w
			ng += g * g
			nw += w * w
			maxAbs = math.Max(maxAbs, math.Abs(g-w))
		}
		minCos = math.Min(minCos, dot/math.Sqrt(ng*nw))
	}
	return minCos, maxAbs
}

// expectEmbeddings checks MiniLM rows as tests/python/test_minilm.py does: cosine >= 0.99999
// and max abs error < 1e-5 per element, rows of unit length.
func expectEmbeddings(t *testing.T, what string, got *nef.Node, want *nef.Array) {
	t.Helper()
	a, err := got.Value()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Shape) != fmt.Sprint(want.Shape) || a.DType != nef.Float32 {
		t.Fatalf("%s: shape %v %v, want %v", what, a.Shape, a.DType, want.Shape)
	}
	g := a.Float64s()
	cos, abs := compareRows(g, want.Float64s(), 384)
	t.Logf("%s: min cosine %.9f, max abs difference %.2e", what, cos, abs)
	if cos < 0.99999 || abs >= 1e-5 {
		t.Errorf("%s: min cosine %v, max abs difference %v", what, cos, abs)
	}
	for r := 0; r < a.Shape[0]; r++ {
		n := 0.0
		for _, v := range g[r*384 : (r+1)*384] {
			n += v * v
		}
		if math.Abs(math.Sqrt(n)-1) > 1e-5 {
			t.Errorf("%s: row %d has norm %v", what, r, math.Sqrt(n))
		}
	}
}

func TestMiniLMFromONNX(t *testing.T) {
	dir := fixtures(t)
	g, err := nef.FromONNX(filepath.Join(dir, "minilm.onnx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !equalSlices(g.Inputs(), []string{"input_ids", "attention_mask"}) || !equalSlices(g.Outputs(), []string{"embeddings"}) {
		t.Fatalf("inputs %v outputs %v", g.Inputs(), g.Outputs())
	}
	if it := g.InputTypes()[0]; it.String() != "input_ids [batch sequence] int64" {
		t.Errorf("input type %v", it)
	}
	for _, suffix := range []string{"", "1"} { // two bindings of batch x sequence
		ids := readNpy(t, filepath.Join(dir, "minilm_ids"+suffix+".npy"))
		mask := readNpy(t, filepath.Join(dir, "minilm_mask"+suffix+".npy"))
		out, err := g.Run(map[string]*nef.Node{"input_ids": nodeOf(ids), "attention_mask": nodeOf(mask)})
		if err != nil {
			t.Fatal(err)
		}
		emb := out["embeddings"]
		py := readNpy(t, filepath.Join(dir, "minilm_py_onnx"+suffix+".npy"))
		expectEmbeddings(t, fmt.Sprintf("Go from_onnx %v vs ONNX Runtime", ids.Shape), emb,
			readNpy(t, filepath.Join(dir, "minilm_ort"+suffix+".npy")))
		expectEmbeddings(t, fmt.Sprintf("Go from_onnx %v vs Python from_onnx", ids.Shape), emb, py)
		got := must(t, emb)
		same := 0
		for i, v := range py.Float64s() {
			if got[i] == v {
				same++
			}
		}
		t.Logf("%v: %d of %d elements bitwise equal to Python's", ids.Shape, same, len(got))
	}
}

func TestMiniLMNefBuiltInPython(t *testing.T) {
	dir := fixtures(t)
	g, err := nef.Load(filepath.Join(dir, "minilm.nef"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ids := readNpy(t, filepath.Join(dir, "minilm_ids.npy"))
	mask := readNpy(t, filepath.Join(dir, "minilm_mask.npy"))
	// several goroutines share the model
	var wg sync.WaitGroup
	results := make([]*nef.Node, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := g.Run(map[string]*nef.Node{"input_ids": nodeOf(ids), "attention_mask": nodeOf(mask)})
			if err == nil {
				results[i] = out["embeddings"]
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	py := readNpy(t, filepath.Join(dir, "minilm_py_nef.npy"))
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		expectEmbeddings(t, fmt.Sprintf("Go run %d of Python's minilm.nef vs Python", i), r, py)
	}
	expectEmbeddings(t, "Python's minilm.nef vs ONNX Runtime", results[0], readNpy(t, filepath.Join(dir, "minilm_ort.npy")))
}

// Array.String prints as numpy's str().
func TestArrayPrintsLikeNumpy(t *testing.T) {
	dir := fixtures(t)
	b, err := os.ReadFile(filepath.Join(dir, "print.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ File, Str string }
	if err := json.Unmarshal(b, &cases); err != nil || len(cases) < 30 {
		t.Fatalf("print.json: %d cases, %v", len(cases), err)
	}
	for _, c := range cases {
		a := readNpy(t, filepath.Join(dir, "print", c.File))
		if got := a.String(); got != c.Str {
			t.Errorf("%v %v:\ngot\n%s\nnumpy\n%s", a.DType, a.Shape, got, c.Str)
		}
		// and through NEF: a node holding the data prints the same
		if got := nodeOf(a).Numpy().String(); got != c.Str {
			t.Errorf("through NEF, %v %v:\ngot\n%s\nnumpy\n%s", a.DType, a.Shape, got, c.Str)
		}
	}
}
