package nef

// #include "gonef.h"
import "C"

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Node is a lazy tensor: a node of NEF's computation graph. Ops (MatMul, Add, Op, ...) only add
// nodes; nothing runs until Execute, Evaluate, a value accessor (Numpy, Float32s, ...) or
// Build. Shape and dtype are known at once, from inference when the op is created.
//
// The type is called Node rather than Tensor because the seed's constructor, nef.Tensor(data,
// shape), takes that name.
//
// A Node that could not be created (its op rejected the shapes, or an input had failed) carries
// that error instead of a graph node: Err returns it, every op that uses the node passes the
// same error on, and Execute and the accessors return it. So code can chain ops and check once.
//
// A Node holds a handle of the C API; Close releases it at once, and a finalizer releases it
// when the Node becomes unreachable. Every method may be called from any goroutine.
type Node struct {
	err   error // why the node could not be created; immutable
	shape []int // immutable
	dtype DType // immutable
	op    string

	materialized atomic.Bool // the value is computed (data, graph outputs, executed nodes)

	mu       sync.Mutex
	h        *C.nef_tensor // nil once freed
	pins     int           // calls in flight that use h; Close frees when the last ends
	closed   bool
	firstErr error // first error of an execution or read, for Err
}

// failed makes a Node that carries err.
func failed(err error) *Node { return &Node{err: err, dtype: invalidDType} }

// describe reads a handle's shape and dtype (on a handle no other goroutine uses, or under
// lazyMu).
func describe(h *C.nef_tensor) ([]int, DType, error) {
	var rank C.int
	var shape [16]C.int64_t
	var dt C.nef_dtype
	if err := call(func() C.nef_status { return C.gonef_describe(h, &rank, &shape[0], &dt) }); err != nil {
		return nil, invalidDType, err
	}
	out := make([]int, int(rank))
	for i := range out {
		out[i] = int(shape[i])
	}
	return out, DType(dt), nil
}

// newNode wraps a handle; the finalizer frees it if Close is never called.
func newNode(h *C.nef_tensor, op string, shape []int, dt DType, materialized bool) *Node {
	n := &Node{h: h, op: op, shape: shape, dtype: dt}
	n.materialized.Store(materialized)
	runtime.SetFinalizer(n, (*Node).Close)
	return n
}

// adopt wraps a new handle that no other goroutine can see yet.
func adopt(h *C.nef_tensor, op string, materialized bool) (*Node, error) {
	shape, dt, err := describe(h)
	if err != nil {
		freeTensor(h)
		return nil, err
	}
	return newNode(h, op, shape, dt, materialized), nil
}

// adoptOrFail is adopt for constructors in the chained style.
func adoptOrFail(h *C.nef_tensor, op string, materialized bool) *Node {
	n, err := adopt(h, op, materialized)
	if err != nil {
		return failed(err)
	}
	return n
}

func freeTensor(h *C.nef_tensor) {
	lazyMu.Lock()
	C.nef_tensor_free(h)
	lazyMu.Unlock()
}

// pin keeps the node's handle alive for one call. i is the node's position among the call's
// inputs, for messages (-1: the receiver).
func (n *Node) pin(op string, i int) (*C.nef_tensor, error) {
	if n == nil {
		if i < 0 {
			return nil, errorf(CodeInvalidArgument, "[%s] nil node", op)
		}
		return nil, errorf(CodeInvalidArgument, "[%s] input %d is nil", op, i)
	}
	if n.err != nil {
		return nil, n.err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		if i < 0 {
			return nil, errorf(CodeInvalidArgument, "[%s] the node is closed", op)
		}
		return nil, errorf(CodeInvalidArgument, "[%s] input %d is closed", op, i)
	}
	n.pins++
	return n.h, nil
}

// check returns the error using n as input i of op would give, without keeping it pinned.
func (n *Node) check(op string, i int) error {
	_, err := n.pin(op, i)
	if err == nil {
		n.unpin()
	}
	return err
}

func (n *Node) unpin() {
	n.mu.Lock()
	n.pins--
	var h *C.nef_tensor
	if n.pins == 0 && n.closed {
		h, n.h = n.h, nil
	}
	n.mu.Unlock()
	if h != nil {
		freeTensor(h)
	}
}

// pinAll pins nodes in order; the first one that fails gives the error.
func pinAll(op string, nodes []*Node) ([]*C.nef_tensor, error) {
	hs := make([]*C.nef_tensor, len(nodes))
	for i, n := range nodes {
		h, err := n.pin(op, i)
		if err != nil {
			unpinAll(nodes[:i])
			return nil, err
		}
		hs[i] = h
	}
	return hs, nil
}

func unpinAll(nodes []*Node) {
	for _, n := range nodes {
		n.unpin()
	}
}

// withNodes runs f on the nodes' handles under lazyMu. Nodes are unpinned after lazyMu is
// released (an unpin may free a handle, which takes lazyMu).
func withNodes(op string, nodes []*Node, f func(hs []*C.nef_tensor) error) error {
	hs, err := pinAll(op, nodes)
	if err != nil {
		return err
	}
	err = func() error {
		lazyMu.Lock()
		defer lazyMu.Unlock()
		return f(hs)
	}()
	unpinAll(nodes)
	return err
}

func (n *Node) record(err error) {
	if n == nil || err == nil {
		return
	}
	n.mu.Lock()
	if n.firstErr == nil {
		n.firstErr = err
	}
	n.mu.Unlock()
}

// Close releases the node's handle; a call in flight on another goroutine finishes first.
// Using a closed node is an *InvalidArgumentError. Closing twice, or a failed or nil node, is
// fine. Nodes made from this one keep the graph nodes they need.
func (n *Node) Close() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	n.closed = true
	var h *C.nef_tensor
	if n.pins == 0 {
		h, n.h = n.h, nil
	}
	n.mu.Unlock()
	if h != nil {
		freeTensor(h)
	}
	return nil
}

// Err reports the first error the node met: the error that kept it from being created (its
// own or an input's), else the first failed Execute or read. nil if none.
func (n *Node) Err() error {
	if n == nil {
		return errorf(CodeInvalidArgument, "[nef] nil node")
	}
	if n.err != nil {
		return n.err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.firstErr
}

// Shape is the node's shape (a copy); nil for a failed node.
func (n *Node) Shape() []int {
	if n == nil || n.err != nil {
		return nil
	}
	return append([]int{}, n.shape...)
}

// DType is the node's element type; for a failed node, an invalid dtype ("invalid").
func (n *Node) DType() DType {
	if n == nil || n.err != nil {
		return invalidDType
	}
	return n.dtype
}

// Rank is the number of dims.
func (n *Node) Rank() int { return len(n.Shape()) }

// Numel is the number of elements (1 for a scalar, 0 for a failed node).
func (n *Node) Numel() int {
	if n == nil || n.err != nil {
		return 0
	}
	return numel(n.shape)
}

// Op is the name of the op that made the node ("matmul"; "input" for data and placeholders,
// and for graph outputs).
func (n *Node) Op() string {
	if n == nil {
		return ""
	}
	return n.op
}

// IsMaterialized reports whether the node holds its value: data, graph outputs, and nodes that
// were executed. Reading it again does not execute again.
func (n *Node) IsMaterialized() bool { return n != nil && n.err == nil && n.materialized.Load() }

// String describes the node without executing it: nef.Node(matmul [2 2] float32).
func (n *Node) String() string {
	if n == nil {
		return "nef.Node(nil)"
	}
	if n.err != nil {
		return fmt.Sprintf("nef.Node(error: %v)", n.err)
	}
	return fmt.Sprintf("nef.Node(%s %v %s)", n.op, n.shape, n.dtype)
}

// Execute runs the graph that computes the node (optimize, plan, compile, run) and keeps the
// value: executing again, or reading the value, does not run it again. It returns the node's
// creation error if it has one.
func (n *Node) Execute() error {
	err := withNodes("execute", []*Node{n}, func(hs []*C.nef_tensor) error {
		return call(func() C.nef_status { return C.nef_tensor_execute(hs[0]) })
	})
	n.finish(err)
	return err
}

func (n *Node) finish(err error) {
	if err == nil {
		n.materialized.Store(true)
	} else {
		n.record(err)
	}
}

// Evaluate executes several nodes in one graph: the parts they share run once, and each keeps
// its value (executing them one by one would recompute shared intermediates). The first
// failed node's error is returned.
func Evaluate(nodes ...*Node) error {
	err := withNodes("execute", nodes, func(hs []*C.nef_tensor) error {
		if len(hs) == 0 {
			return nil
		}
		return call(func() C.nef_status { return C.nef_evaluate(&hs[0], C.int(len(hs))) })
	})
	for _, n := range nodes {
		if n != nil {
			n.finish(err)
		}
	}
	return err
}

// ---- values ----------------------------------------------------------------------------------

// Value executes the node if needed and copies its value to Go memory.
func (n *Node) Value() (*Array, error) {
	var a *Array
	err := withNodes("value", []*Node{n}, func(hs []*C.nef_tensor) error {
		if !n.dtype.valid() { // NEF's storage-only float8 types have no Go element type
			return errorf(CodeType, "[value] dtype code %d has no Go type: cast the node to a "+
				"float type first (nef.Cast(x, nef.Float32))", int(n.dtype))
		}
		data, ptr, nbytes := makeData(n.dtype, numel(n.shape))
		err := call(func() C.nef_status {
			return C.nef_tensor_copy_to(hs[0], ptr, C.size_t(nbytes))
		})
		runtime.KeepAlive(data)
		if err == nil {
			a = &Array{Shape: append([]int{}, n.shape...), DType: n.dtype, Data: data}
		}
		return err
	})
	n.finish(err)
	return a, err
}

// Numpy is Value for the chained style (the seed's c.Numpy()): on failure it returns nil and
// the error is kept for Err. fmt prints the array as numpy does.
func (n *Node) Numpy() *Array {
	a, _ := n.Value()
	return a
}

func valueAs[T any](n *Node, want DType, name string) ([]T, error) {
	if n != nil && n.err == nil && n.dtype != want {
		err := errorf(CodeType, "[%s] the node is %s, not %s", name, n.dtype, want)
		n.record(err)
		return nil, err
	}
	a, err := n.Value()
	if err != nil {
		return nil, err
	}
	return a.Data.([]T), nil
}

// Float32s returns the value of a float32 node (a *TypeError for other dtypes; see AsFloat64s).
func (n *Node) Float32s() ([]float32, error) { return valueAs[float32](n, Float32, "Float32s") }

// Float64s returns the value of a float64 node.
func (n *Node) Float64s() ([]float64, error) { return valueAs[float64](n, Float64, "Float64s") }

// Float16s returns the value of a float16 node (F16.Float32 converts an element).
func (n *Node) Float16s() ([]F16, error) { return valueAs[F16](n, Float16, "Float16s") }

// BFloat16s returns the value of a bfloat16 node.
func (n *Node) BFloat16s() ([]BF16, error) { return valueAs[BF16](n, BFloat16, "BFloat16s") }

// Int8s returns the value of an int8 node.
func (n *Node) Int8s() ([]int8, error) { return valueAs[int8](n, Int8, "Int8s") }

// Uint8s returns the value of a uint8 node.
func (n *Node) Uint8s() ([]uint8, error) { return valueAs[uint8](n, Uint8, "Uint8s") }

// Int32s returns the value of an int32 node.
func (n *Node) Int32s() ([]int32, error) { return valueAs[int32](n, Int32, "Int32s") }

// Int64s returns the value of an int64 node.
func (n *Node) Int64s() ([]int64, error) { return valueAs[int64](n, Int64, "Int64s") }

// Int16s returns the value of an int16 node.
func (n *Node) Int16s() ([]int16, error) { return valueAs[int16](n, Int16, "Int16s") }

// Uint16s returns the value of a uint16 node.
func (n *Node) Uint16s() ([]uint16, error) { return valueAs[uint16](n, Uint16, "Uint16s") }

// Uint32s returns the value of a uint32 node.
func (n *Node) Uint32s() ([]uint32, error) { return valueAs[uint32](n, Uint32, "Uint32s") }

// Uint64s returns the value of a uint64 node.
func (n *Node) Uint64s() ([]uint64, error) { return valueAs[uint64](n, Uint64, "Uint64s") }

// Bools returns the value of a bool node.
func (n *Node) Bools() ([]bool, error) { return valueAs[bool](n, Bool, "Bools") }

// AsFloat64s returns the value of a node of any dtype converted to float64 (bools are 0 and 1).
func (n *Node) AsFloat64s() ([]float64, error) {
	a, err := n.Value()
	if err != nil {
		return nil, err
	}
	return a.Float64s(), nil
}

// Item returns the value of a one-element node as a float64 (a *ShapeError otherwise).
func (n *Node) Item() (float64, error) {
	if n != nil && n.err == nil && numel(n.shape) != 1 {
		err := errorf(CodeShape, "[item] needs exactly one element, the node has shape %v", n.shape)
		n.record(err)
		return 0, err
	}
	v, err := n.AsFloat64s()
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// ---- graph files -----------------------------------------------------------------------------

// BuildOption changes how Build and Graph.Save write a .nef file.
type BuildOption func(*buildOptions)

type buildOptions struct{ embedPlan bool }

// EmbedPlan also stores the compiled plan in the file (compiler_cache "embedded",
// docs/format.md), so that Load skips the optimizer and planner.
func EmbedPlan() BuildOption { return func(o *buildOptions) { o.embedPlan = true } }

func buildFlags(opts []BuildOption) C.int {
	var o buildOptions
	for _, f := range opts {
		f(&o)
	}
	if o.embedPlan {
		return 1
	}
	return 0
}

// Build writes a .nef file that computes the node, with one output named "output".
// Placeholders become the graph's named inputs and data becomes constants. Nothing executes.
func (n *Node) Build(path string, opts ...BuildOption) error {
	return Build(path, map[string]*Node{"output": n}, opts...)
}

// Build writes a .nef file with several named outputs, in the order of their names.
func Build(path string, outputs map[string]*Node, opts ...BuildOption) error {
	names := make([]string, 0, len(outputs))
	for name := range outputs {
		names = append(names, name)
	}
	sort.Strings(names)
	nodes := make([]*Node, len(names))
	for i, name := range names {
		nodes[i] = outputs[name]
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cnames := newCStrings(names)
	defer cnames.free()
	flags := buildFlags(opts)
	return withNodes("build", nodes, func(hs []*C.nef_tensor) error {
		var hp **C.nef_tensor
		if len(hs) > 0 {
			hp = &hs[0]
		}
		return call(func() C.nef_status {
			return C.nef_build(cpath, cnames.ptr(), hp, C.int(len(hs)), flags)
		})
	})
}

// ---- creation --------------------------------------------------------------------------------

// Tensor makes a node holding a copy of data, row-major, with the given shape. data is a slice
// of float32, float64, F16, BF16, int8, uint8, int16, uint16, int32, uint32, int64, uint64, int
// (stored as int64) or bool, or one such scalar. A nil shape means the slice's length (1-D), or
// rank 0 for a scalar. A shape that data does not fill is a *ShapeError, another Go type a
// *TypeError (carried by the node).
func Tensor(data any, shape []int) *Node {
	if data == nil {
		return failed(errorf(CodeInvalidArgument, "[tensor] data is nil"))
	}
	scalar := false
	switch v := data.(type) {
	case float32, float64, F16, BF16, int8, uint8, int16, uint16, int32, uint32, int64, uint64, bool:
		scalar = true
	case int:
		scalar, data = true, int64(v)
	case []int:
		w := make([]int64, len(v))
		for i, x := range v {
			w[i] = int64(x)
		}
		data = w
	}
	if scalar {
		data = sliceOf(data)
	}
	dt, count, ptr, ok := describeData(data)
	if !ok {
		return failed(errorf(CodeType, "[tensor] unsupported Go type %T (use a slice of float32, "+
			"float64, nef.F16, nef.BF16, int8, uint8, int16, uint16, int32, uint32, int64, uint64, int "+
			"or bool)", data))
	}
	if shape == nil && !scalar {
		shape = []int{count}
	}
	want, err := checkedNumel("tensor", shape)
	if err != nil {
		return failed(err)
	}
	if want != count {
		return failed(errorf(CodeShape, "[tensor] %d values do not fill shape %v", count, shape))
	}
	cs := int64s(shape)
	var h *C.nef_tensor
	err = call(func() C.nef_status {
		return C.nef_tensor_from_data(ptr, C.nef_dtype(dt), int64Ptr(cs), C.int(len(cs)), &h)
	})
	runtime.KeepAlive(data)
	if err != nil {
		return failed(err)
	}
	return adoptOrFail(h, "input", true)
}

// Placeholder makes a named graph input of the given shape and dtype. It has no value: Build
// turns it into an input of the .nef file, bound when the loaded graph runs; executing a node
// that depends on it is a *ValidationError.
func Placeholder(name string, shape []int, dtype DType) *Node {
	if _, err := checkedNumel("placeholder", shape); err != nil {
		return failed(err)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	cs := int64s(shape)
	var h *C.nef_tensor
	if err := call(func() C.nef_status {
		return C.nef_placeholder(cname, C.nef_dtype(dtype), int64Ptr(cs), C.int(len(cs)), &h)
	}); err != nil {
		return failed(err)
	}
	return adoptOrFail(h, "input", false)
}

// checkedNumel is the element count of a shape; negative dims and overflow are *ShapeErrors.
func checkedNumel(op string, shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, errorf(CodeShape, "[%s] negative dim in shape %v", op, shape)
		}
		if d != 0 && n > (1<<62)/d {
			return 0, errorf(CodeShape, "[%s] shape %v has too many elements", op, shape)
		}
		n *= d
	}
	return n, nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
