// Package nef is the Go API of NEF, a lazy computation-graph engine for AI inference.
//
// Ops only add nodes to a graph; nothing runs until a value is needed:
//
//	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
//	b := nef.Tensor([]float32{5, 6, 7, 8}, []int{2, 2})
//	c := nef.MatMul(a, b) // a graph node; nothing ran
//	c.Execute()           // optimize, plan, compile, run
//	fmt.Println(c.Numpy()) // [[19. 22.]
//	                       //  [43. 50.]]
//
// Errors are Go errors whose types mirror NEF's hierarchy (*ShapeError, *TypeError, ...; all
// unwrap to *Error). A node that could not be created carries its error, and ops pass the first
// error of their inputs on, so chained code checks once, at Execute, a value accessor or Err.
//
// Graph files: Node.Build and Build write .nef files (Placeholder nodes become named inputs),
// Load reads them and FromONNX imports ONNX models; Graph.Run executes them, from any number of
// goroutines at once. Stats, Devices, SetDevices and SetThreads cover the runtime.
//
// Nodes and graphs hold C handles: Close releases them, and a finalizer does if Close is never
// called. Every function and method is safe for concurrent use; executions of lazy nodes are
// serialized inside the package (the C API requires it), Graph.Run calls are not.
//
// The package is cgo over NEF's C API (include/nef/nef.h) and links libnef.so from the
// repository's build/release (make build); docs/go.md has the whole API.
package nef
