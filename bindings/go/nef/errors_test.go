package nef_test

// Every error type raised for real, matched with errors.As to its class and to *nef.Error, and
// the chained style: a node carries the first error of its inputs.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

// cyclicNef writes a .nef file whose graph is x -> relu -> neg with relu rewired to read neg.
func cyclicNef(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "cycle.nef")
	x := nef.Placeholder("x", []int{2}, nef.Float32)
	if err := nef.Neg(nef.Relu(x)).Build(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint64(b[8:])
	dataOff := binary.LittleEndian.Uint64(b[16:])
	var h map[string]any
	dec := json.NewDecoder(bytes.NewReader(b[32 : 32+hlen]))
	dec.UseNumber()
	if err := dec.Decode(&h); err != nil {
		t.Fatal(err)
	}
	graph := h["graph"].(map[string]any)
	nodes := graph["nodes"].([]any)
	producer := map[string]string{}
	var relu, neg map[string]any
	for _, n := range nodes {
		m := n.(map[string]any)
		producer[m["output"].(string)] = m["id"].(string)
		switch m["op"] {
		case "relu":
			relu = m
		case "neg":
			neg = m
		}
	}
	if relu == nil || neg == nil {
		t.Fatalf("unexpected graph: %v", nodes)
	}
	relu["inputs"] = []any{neg["output"]}
	var edges []any
	for _, n := range nodes {
		m := n.(map[string]any)
		for _, in := range m["inputs"].([]any) {
			edges = append(edges, map[string]any{"from": producer[in.(string)], "to": m["id"]})
		}
	}
	graph["edges"] = edges
	header, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	off := (32 + uint64(len(header)) + 63) / 64 * 64
	out := make([]byte, off)
	copy(out, b[:32])
	binary.LittleEndian.PutUint64(out[8:], uint64(len(header)))
	binary.LittleEndian.PutUint64(out[16:], off)
	copy(out[32:], header)
	for i := 32 + len(header); i < int(off); i++ {
		out[i] = ' '
	}
	out = append(out, b[dataOff:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEveryErrorType(t *testing.T) {
	dir := t.TempDir()
	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
	v := nef.Tensor([]float32{1, 2, 3}, nil)
	garbage := filepath.Join(dir, "garbage.nef")
	os.WriteFile(garbage, []byte("NEF\x01 this is not a graph file at all, just some bytes......"), 0o644)
	closed := nef.Tensor([]float32{1}, nil)
	closed.Close()
	x := nef.Placeholder("x", []int{2, 2}, nef.Float32)
	model := filepath.Join(dir, "m.nef")
	if err := nef.MatMul(x, a).Build(model); err != nil {
		t.Fatal(err)
	}
	g, err := nef.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	closedGraph, _ := nef.Load(model)
	closedGraph.Close()

	type target struct {
		as   func(error) bool
		code nef.Code
	}
	is := func(code nef.Code) target {
		return target{code: code, as: func(err error) bool {
			switch code {
			case nef.CodeShape:
				var e *nef.ShapeError
				return errors.As(err, &e)
			case nef.CodeType:
				var e *nef.TypeError
				return errors.As(err, &e)
			case nef.CodeValidation:
				var e *nef.ValidationError
				return errors.As(err, &e)
			case nef.CodeUnsupported:
				var e *nef.UnsupportedError
				return errors.As(err, &e)
			case nef.CodeFormat:
				var e *nef.FormatError
				return errors.As(err, &e)
			case nef.CodeGraphCycle:
				var e *nef.GraphCycleError
				return errors.As(err, &e)
			case nef.CodeOutOfMemory:
				var e *nef.OutOfMemoryError
				return errors.As(err, &e)
			case nef.CodeDevice:
				var e *nef.DeviceError
				return errors.As(err, &e)
			case nef.CodeInvalidArgument:
				var e *nef.InvalidArgumentError
				return errors.As(err, &e)
			case nef.CodeError: // the base class itself, no subclass
				e, ok := err.(*nef.Error)
				return ok && e.Code == nef.CodeError
			}
			return false
		}}
	}
	cases := []struct {
		name   string
		err    func() error
		want   target
		substr string
	}{
		{"matmul shapes", func() error { return nef.MatMul(a, v).Err() }, is(nef.CodeShape), "[matmul] inner dimensions differ"},
		{"data does not fill the shape", func() error { return nef.Tensor([]float32{1, 2, 3}, []int{2, 2}).Err() }, is(nef.CodeShape), "[tensor]"},
		{"negative dim", func() error { return nef.Placeholder("p", []int{2, -1}, nef.Float32).Err() }, is(nef.CodeShape), "negative"},
		{"rank over 16", func() error { return nef.Zeros(make([]int, 17), nef.Float32).Err() }, is(nef.CodeShape), "rank"},
		{"reshape", func() error { return nef.Reshape(a, 3).Err() }, is(nef.CodeShape), "[reshape]"},
		{"bad axis", func() error { return nef.Softmax(a, 5).Err() }, is(nef.CodeShape), "[softmax]"},
		{"item of many", func() error { _, err := a.Item(); return err }, is(nef.CodeShape), "[item]"},
		{"sub on bools", func() error { return nef.Sub(nef.Tensor([]bool{true}, nil), nef.Tensor([]bool{true}, nil)).Err() }, is(nef.CodeType), "[sub]"},
		{"unsupported Go type", func() error { return nef.Tensor([]string{"a"}, nil).Err() }, is(nef.CodeType), "[]string"},
		{"accessor of another dtype", func() error { _, err := a.Int64s(); return err }, is(nef.CodeType), "float32"},
		{"unknown dtype name", func() error { _, err := nef.ParseDType("float8"); return err }, is(nef.CodeType), "float8"},
		{"attribute of the wrong type", func() error { return nef.Op("softmax", []*nef.Node{a}, nef.Attrs{"axis": "last"}).Err() }, is(nef.CodeValidation), "softmax"},
		{"unknown attribute", func() error { return nef.Op("relu", []*nef.Node{a}, nef.Attrs{"alpha": 0.1}).Err() }, is(nef.CodeValidation), "alpha"},
		{"unsupported attribute Go type", func() error { return nef.Op("softmax", []*nef.Node{a}, nef.Attrs{"axis": struct{}{}}).Err() }, is(nef.CodeValidation), "axis"},
		{"uint64 attribute out of range", func() error { return nef.Op("softmax", []*nef.Node{a}, nef.Attrs{"axis": uint64(1 << 63)}).Err() }, is(nef.CodeValidation), "int64 range"},
		{"gather index out of range (at run time)", func() error {
			return nef.Gather(a, nef.Tensor([]int64{5}, nil), 0).Execute()
		}, is(nef.CodeValidation), "[gather]"},
		{"executing a placeholder", func() error { return nef.Relu(x).Execute() }, is(nef.CodeValidation), "x"},
		{"run without an input", func() error { _, err := g.Run(nil); return err }, is(nef.CodeValidation), "missing input 'x'"},
		{"run with an unknown input", func() error {
			_, err := g.Run(map[string]*nef.Node{"x": a, "y": a})
			return err
		}, is(nef.CodeValidation), "unknown input 'y'"},
		{"layernorm bias without weight", func() error { return nef.LayerNorm(a, nil, a, 1e-5).Err() }, is(nef.CodeValidation), "[layernorm]"},
		{"build without outputs", func() error { return nef.Build(filepath.Join(dir, "none.nef"), nil) }, is(nef.CodeValidation), "[build]"},
		{"unknown op", func() error { return nef.Op("no_such_op", []*nef.Node{a}, nil).Err() }, is(nef.CodeUnsupported), "no_such_op"},
		{"malformed .nef", func() error { _, err := nef.Load(garbage); return err }, is(nef.CodeFormat), "read_nef"},
		// The core reports a .nef that cannot be opened as a plain NEFError (an ONNX file that
		// cannot be opened is a FormatError).
		{"missing .nef file", func() error { _, err := nef.Load(filepath.Join(dir, "nope.nef")); return err }, is(nef.CodeError), "nope.nef"},
		{"missing ONNX file", func() error { _, err := nef.FromONNX(filepath.Join(dir, "nope.onnx"), nil); return err }, is(nef.CodeFormat), "nope.onnx"},
		{"malformed ONNX", func() error { _, err := nef.FromONNXBytes([]byte("not a model"), nil); return err }, is(nef.CodeFormat), "onnx"},
		{"a cycle in a .nef", func() error { _, err := nef.Load(cyclicNef(t, dir)); return err }, is(nef.CodeGraphCycle), "cycle"},
		{"out of memory", func() error { return nef.Zeros([]int{1 << 24, 1 << 24}, nef.Float64).Execute() }, is(nef.CodeOutOfMemory), "allocate"},
		{"unknown device", func() error { return nef.SetDevices("quantum") }, is(nef.CodeDevice), "quantum"},
		{"negative thread count", func() error { return nef.SetThreads(-1) }, is(nef.CodeValidation), "threads"},
		{"nil input", func() error { return nef.MatMul(nil, a).Err() }, is(nef.CodeInvalidArgument), "[matmul] input 0 is nil"},
		{"nil data", func() error { return nef.Tensor(nil, nil).Err() }, is(nef.CodeInvalidArgument), "[tensor]"},
		{"closed input", func() error { return nef.Add(a, closed).Err() }, is(nef.CodeInvalidArgument), "[add] input 1 is closed"},
		{"executing a closed node", func() error { return closed.Execute() }, is(nef.CodeInvalidArgument), "closed"},
		{"closed graph", func() error { _, err := closedGraph.Run(nil); return err }, is(nef.CodeInvalidArgument), "closed"},
		{"nil graph", func() error { var ng *nef.Graph; return ng.Save(filepath.Join(dir, "n.nef")) }, is(nef.CodeInvalidArgument), "nil graph"},
	}
	seen := map[nef.Code]bool{}
	for _, c := range cases {
		err := c.err()
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		var base *nef.Error
		if !c.want.as(err) || !errors.As(err, &base) || base.Code != c.want.code {
			t.Errorf("%s: got %T %v, want %v", c.name, err, err, c.want.code)
			continue
		}
		if !strings.Contains(err.Error(), c.substr) || !strings.HasPrefix(err.Error(), c.want.code.String()+": ") {
			t.Errorf("%s: message %q lacks %q", c.name, err.Error(), c.substr)
		}
		seen[c.want.code] = true
	}
	// every class but CompileError, which has no trigger on a CPU build (internal_test.go maps it)
	if len(seen) != 10 {
		t.Errorf("classes raised: %v", seen)
	}
	g.Close()
}

func TestChainedErrors(t *testing.T) {
	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
	v := nef.Tensor([]float32{1, 2, 3}, nil)
	bad := nef.MatMul(a, v)
	first := bad.Err()
	if first == nil {
		t.Fatal("no error")
	}
	// ops pass the first input error on, unchanged
	chain := nef.Add(nef.Exp(a), nef.Relu(nef.Softmax(bad, -1)))
	if chain.Err() != first {
		t.Fatalf("chain error %v, want the matmul's %v", chain.Err(), first)
	}
	later := nef.Add(chain, nef.Op("no_such_op", nil, nil))
	if later.Err() != first {
		t.Errorf("the first failing input wins: got %v", later.Err())
	}
	if e := nef.Op("softmax", []*nef.Node{bad}, nef.Attrs{"axis": struct{}{}}).Err(); e != first {
		t.Errorf("an input error comes before an attribute error: got %v", e)
	}
	if parts := nef.Split(bad, []int{1, 1}, 0); parts[0].Err() != first || parts[1].Err() != first {
		t.Error("Split parts carry the input's error")
	}
	if parts := nef.Split(a, nil, 0); len(parts) != 1 || parts[0].Err() == nil {
		t.Errorf("Split into no sizes: %v", parts)
	}
	if parts := nef.Split(nef.Tensor([]float32{}, []int{0}), nil, 0); len(parts) != 0 {
		t.Errorf("Split of an empty dim into no sizes: %v", parts)
	}
	if s := nef.Stack(0, a, bad); s.Err() != first {
		t.Errorf("Stack: %v", s.Err())
	}
	// everything that uses a failed node reports its error
	if err := chain.Execute(); err != first {
		t.Errorf("Execute: %v", err)
	}
	if chain.Numpy() != nil {
		t.Error("Numpy of a failed node is not nil")
	}
	if _, err := chain.Float32s(); err != first {
		t.Errorf("Float32s: %v", err)
	}
	if err := nef.Evaluate(a, chain); err != first {
		t.Errorf("Evaluate: %v", err)
	}
	if err := chain.Build(filepath.Join(t.TempDir(), "x.nef")); err != first {
		t.Errorf("Build: %v", err)
	}
	if chain.Shape() != nil || chain.DType().String() != "invalid" || chain.Numel() != 0 {
		t.Errorf("a failed node's shape %v dtype %v", chain.Shape(), chain.DType())
	}
	if !strings.Contains(chain.String(), "error") {
		t.Errorf("String: %s", chain)
	}
	// a nil node works as a failed one
	var nilNode *nef.Node
	if nilNode.Err() == nil || nilNode.Shape() != nil || nilNode.Execute() == nil || nilNode.Close() != nil {
		t.Error("nil node")
	}
	// an error at run time is kept for Err
	g := nef.Gather(a, nef.Tensor([]int64{7}, nil), 0)
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	runErr := g.Execute()
	if runErr == nil || g.Err() != runErr {
		t.Errorf("Err after a failed Execute: %v, %v", g.Err(), runErr)
	}
	if g.Numpy() != nil || g.Err() != runErr {
		t.Error("Err keeps the first error")
	}
	// a chained node that failed is still usable by Close
	if err := chain.Close(); err != nil {
		t.Error(err)
	}
}
