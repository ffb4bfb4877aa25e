package nef

// #include "gonef.h"
import "C"

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"
)

// Graph is a loaded graph: a .nef file (Load) or an imported ONNX model (FromONNX). Run may be
// called from any number of goroutines at once: they share the compiled plan and each run gets
// its own buffers. Close releases it (a finalizer does if Close is never called); runs in
// flight finish first.
type Graph struct {
	mu      sync.RWMutex // Run and the queries hold it for reading, Close for writing
	h       *C.nef_graph
	inputs  []InputType
	outputs []string
}

// InputType is a graph input's declared type. In an imported ONNX model a symbolic dim that is
// still unbound is -1 in Shape and named in DimNames ("" for fixed dims); Run binds it from the
// input's shape.
type InputType struct {
	Name     string
	Shape    []int
	DimNames []string
	DType    DType
}

func (t InputType) String() string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		if d < 0 && t.DimNames[i] != "" {
			dims[i] = t.DimNames[i]
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%s [%s] %s", t.Name, strings.Join(dims, " "), t.DType)
}

// Load reads a .nef file and re-validates it: a *FormatError for a malformed file (the message
// says where), *ValidationError or *GraphCycleError for a graph that does not hold together.
func Load(path string) (*Graph, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var h *C.nef_graph
	if err := call(func() C.nef_status { return C.nef_graph_load(cpath, &h) }); err != nil {
		return nil, err
	}
	return adoptGraph(h)
}

// FromONNX imports an ONNX model (docs/onnx.md). dims binds symbolic input dims by name
// ({"batch": 1}); dims left unbound are bound by each Run from its inputs' shapes (one
// specialization per distinct binding, cached). A *FormatError for malformed files, an
// *UnsupportedError naming the op, node and opset for what NEF does not import.
func FromONNX(path string, dims map[string]int) (*Graph, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return fromONNX(dims, func(names **C.char, values *C.int64_t, n C.int, out **C.nef_graph) C.nef_status {
		return C.nef_graph_from_onnx(cpath, names, values, n, out)
	})
}

// FromONNXBytes is FromONNX on the model's bytes (external data files cannot be read then).
func FromONNXBytes(model []byte, dims map[string]int) (*Graph, error) {
	var p unsafe.Pointer
	if len(model) > 0 {
		p = unsafe.Pointer(&model[0])
	}
	g, err := fromONNX(dims, func(names **C.char, values *C.int64_t, n C.int, out **C.nef_graph) C.nef_status {
		return C.nef_graph_from_onnx_bytes(p, C.size_t(len(model)), names, values, n, out)
	})
	runtime.KeepAlive(model)
	return g, err
}

func fromONNX(dims map[string]int, f func(**C.char, *C.int64_t, C.int, **C.nef_graph) C.nef_status) (*Graph, error) {
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := make([]int, len(keys))
	for i, k := range keys {
		values[i] = dims[k]
	}
	names := newCStrings(keys)
	defer names.free()
	cv := int64s(values)
	var h *C.nef_graph
	if err := call(func() C.nef_status { return f(names.ptr(), int64Ptr(cv), C.int(len(keys)), &h) }); err != nil {
		return nil, err
	}
	return adoptGraph(h)
}

// adoptGraph reads a new graph's inputs and outputs once.
func adoptGraph(h *C.nef_graph) (*Graph, error) {
	g := &Graph{h: h}
	err := call(func() C.nef_status {
		var ni, no C.int
		if st := C.nef_graph_num_inputs(h, &ni); st != C.NEF_OK {
			return st
		}
		if st := C.nef_graph_num_outputs(h, &no); st != C.NEF_OK {
			return st
		}
		for i := C.int(0); i < ni; i++ {
			var name *C.char
			if st := C.nef_graph_input_name(h, i, &name); st != C.NEF_OK {
				return st
			}
			var rank C.int
			var shape [16]C.int64_t
			var dt C.nef_dtype
			if st := C.gonef_graph_input(h, i, &rank, &shape[0], &dt); st != C.NEF_OK {
				return st
			}
			t := InputType{Name: C.GoString(name), DType: DType(dt)}
			for d := C.int(0); d < rank; d++ {
				var dn *C.char
				if st := C.nef_graph_input_dim_name(h, i, d, &dn); st != C.NEF_OK {
					return st
				}
				t.Shape = append(t.Shape, int(shape[d]))
				t.DimNames = append(t.DimNames, C.GoString(dn))
			}
			if t.Shape == nil {
				t.Shape, t.DimNames = []int{}, []string{}
			}
			g.inputs = append(g.inputs, t)
		}
		for i := C.int(0); i < no; i++ {
			var name *C.char
			if st := C.nef_graph_output_name(h, i, &name); st != C.NEF_OK {
				return st
			}
			g.outputs = append(g.outputs, C.GoString(name))
		}
		return C.NEF_OK
	})
	if err != nil {
		C.nef_graph_free(h)
		return nil, err
	}
	runtime.SetFinalizer(g, (*Graph).Close)
	return g, nil
}

// Close releases the graph. Using it afterwards is an *InvalidArgumentError; closing twice is
// fine.
func (g *Graph) Close() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	h := g.h
	g.h = nil
	g.mu.Unlock()
	if h != nil {
		C.nef_graph_free(h)
	}
	return nil
}

// Inputs are the names of the graph's inputs, in order.
func (g *Graph) Inputs() []string {
	if g == nil {
		return nil
	}
	out := make([]string, len(g.inputs))
	for i, t := range g.inputs {
		out[i] = t.Name
	}
	return out
}

// Outputs are the names of the graph's outputs, in order.
func (g *Graph) Outputs() []string {
	if g == nil {
		return nil
	}
	return append([]string{}, g.outputs...)
}

// InputTypes are the declared types of the inputs, in order.
func (g *Graph) InputTypes() []InputType {
	if g == nil {
		return nil
	}
	out := make([]InputType, len(g.inputs))
	for i, t := range g.inputs {
		out[i] = InputType{t.Name, append([]int{}, t.Shape...), append([]string{}, t.DimNames...), t.DType}
	}
	return out
}

// handle read-locks the graph for one call; release with g.mu.RUnlock.
func (g *Graph) handle(op string) (*C.nef_graph, error) {
	if g == nil {
		return nil, errorf(CodeInvalidArgument, "[%s] nil graph", op)
	}
	g.mu.RLock()
	if g.h == nil {
		g.mu.RUnlock()
		return nil, errorf(CodeInvalidArgument, "[%s] the graph is closed", op)
	}
	return g.h, nil
}

// Run executes the graph with inputs by name and returns its outputs by name, as materialized
// nodes (read them with Float32s, Numpy, ..., or pass them on to ops or other graphs). Inputs
// must match the declared types: a *ValidationError for a missing or unknown name, *ShapeError
// and *TypeError for mismatches. Lazy input nodes are executed first. Safe to call from many
// goroutines at once.
func (g *Graph) Run(inputs map[string]*Node) (map[string]*Node, error) {
	h, err := g.handle("run")
	if err != nil {
		return nil, err
	}
	defer g.mu.RUnlock()
	for name := range inputs {
		if !g.hasInput(name) {
			return nil, errorf(CodeValidation, "[run] unknown input '%s'; the graph's inputs are %s",
				name, strings.Join(g.Inputs(), ", "))
		}
	}
	nodes := make([]*Node, len(g.inputs))
	for i, t := range g.inputs {
		n, ok := inputs[t.Name]
		if !ok {
			return nil, errorf(CodeValidation, "[run] missing input '%s' %s", t.Name, t)
		}
		nodes[i] = n
	}
	hs, err := pinAll("run", nodes)
	if err != nil {
		return nil, err
	}
	defer unpinAll(nodes)
	// Materialize lazy inputs under lazyMu; the run itself then only reads immutable values.
	var lazy []*Node
	for _, n := range nodes {
		if !n.materialized.Load() {
			lazy = append(lazy, n)
		}
	}
	if len(lazy) > 0 {
		if err := Evaluate(lazy...); err != nil {
			return nil, err
		}
	}
	outs := make([]*C.nef_tensor, len(g.outputs))
	var hp, op **C.nef_tensor
	if len(hs) > 0 {
		hp = &hs[0]
	}
	if len(outs) > 0 {
		op = &outs[0]
	}
	if err := call(func() C.nef_status {
		return C.nef_graph_run(h, hp, C.int(len(hs)), op, C.int(len(outs)))
	}); err != nil {
		return nil, err
	}
	result := make(map[string]*Node, len(outs))
	for i, o := range outs {
		n, err := adopt(o, "input", true)
		if err != nil {
			for _, rest := range outs[i+1:] {
				freeTensor(rest)
			}
			for _, done := range result {
				done.Close()
			}
			return nil, err
		}
		result[g.outputs[i]] = n
	}
	return result, nil
}

func (g *Graph) hasInput(name string) bool {
	for _, t := range g.inputs {
		if t.Name == name {
			return true
		}
	}
	return false
}

// Save writes the graph as a .nef file. An imported ONNX model needs its symbolic dims bound
// at import (a *ValidationError names the unbound ones).
func (g *Graph) Save(path string, opts ...BuildOption) error {
	h, err := g.handle("save")
	if err != nil {
		return err
	}
	defer g.mu.RUnlock()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	flags := buildFlags(opts)
	return call(func() C.nef_status { return C.nef_graph_save(h, cpath, flags) })
}
