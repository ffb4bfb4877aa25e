package nef

import "fmt"

// Code is a NEF status code, the same numbers as nef_status in nef.h and nef::ErrorCode in C++.
type Code int

// The status codes. CodeOK never appears in an error.
const (
	CodeOK              Code = 0
	CodeError           Code = 1  // *Error: any other failure
	CodeGraphCycle      Code = 2  // *GraphCycleError
	CodeValidation      Code = 3  // *ValidationError
	CodeShape           Code = 4  // *ShapeError
	CodeType            Code = 5  // *TypeError
	CodeUnsupported     Code = 6  // *UnsupportedError
	CodeFormat          Code = 7  // *FormatError
	CodeOutOfMemory     Code = 8  // *OutOfMemoryError
	CodeDevice          Code = 9  // *DeviceError
	CodeCompile         Code = 10 // *CompileError
	CodeInvalidArgument Code = 11 // *InvalidArgumentError: nil or closed nodes and graphs
	CodeCancelled       Code = 12 // *CancelledError
)

var codeNames = [...]string{
	"OK", "NEFError", "NEFGraphCycleError", "NEFValidationError", "NEFShapeError",
	"NEFTypeError", "NEFUnsupportedError", "NEFFormatError", "NEFOutOfMemoryError",
	"NEFDeviceError", "NEFCompileError", "NEFInvalidArgument", "NEFCancelledError",
}

// String is the error class name the C API and Python use: "NEFShapeError".
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("NEFError(%d)", int(c))
}

// Error is the base of NEF's error hierarchy. Every error this package returns is one of the
// typed errors below (or an *Error for CodeError); each of them unwraps to its *Error, so
//
//	var e *nef.Error
//	errors.As(err, &e)
//
// matches any NEF error, and errors.As with a *nef.ShapeError (and so on) matches one class.
// Messages come from NEF and start with the op in brackets: "[matmul] inner dimensions differ".
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// errorBase embeds Error in the typed errors (an embedded field named Error would hide the
// Error method); their Code and Message fields are Error's.
type errorBase = Error

// The typed errors, one per NEF error class (nef::GraphCycleError, ... in C++).
type (
	// GraphCycleError: a graph file whose nodes form a cycle.
	GraphCycleError struct{ errorBase }
	// ValidationError: bad attributes, bad graph inputs (missing or unknown names), gather
	// indices out of range, a buffer of the wrong size.
	ValidationError struct{ errorBase }
	// ShapeError: shapes that do not fit the op, bad axes, data that does not fill a shape.
	ShapeError struct{ errorBase }
	// TypeError: dtypes the op does not accept, an accessor of another dtype, unsupported Go types.
	TypeError struct{ errorBase }
	// UnsupportedError: an unknown op, a feature NEF does not implement.
	UnsupportedError struct{ errorBase }
	// FormatError: a malformed .nef or ONNX file; the message says where.
	FormatError struct{ errorBase }
	// OutOfMemoryError: an allocation failed.
	OutOfMemoryError struct{ errorBase }
	// DeviceError: unknown or unusable devices (SetDevices, NEF_DEVICES).
	DeviceError struct{ errorBase }
	// CompileError: no kernel could be compiled for a node.
	CompileError struct{ errorBase }
	// InvalidArgumentError: a nil or closed *Node or *Graph, a NULL at the C API.
	InvalidArgumentError struct{ errorBase }
	// CancelledError: a run stopped by a cancel request before it finished.
	CancelledError struct{ errorBase }
)

func (e *GraphCycleError) Unwrap() error      { return &e.errorBase }
func (e *ValidationError) Unwrap() error      { return &e.errorBase }
func (e *ShapeError) Unwrap() error           { return &e.errorBase }
func (e *TypeError) Unwrap() error            { return &e.errorBase }
func (e *UnsupportedError) Unwrap() error     { return &e.errorBase }
func (e *FormatError) Unwrap() error          { return &e.errorBase }
func (e *OutOfMemoryError) Unwrap() error     { return &e.errorBase }
func (e *DeviceError) Unwrap() error          { return &e.errorBase }
func (e *CompileError) Unwrap() error         { return &e.errorBase }
func (e *InvalidArgumentError) Unwrap() error { return &e.errorBase }
func (e *CancelledError) Unwrap() error       { return &e.errorBase }

// newError makes the typed error for a status code.
func newError(code Code, msg string) error {
	base := Error{Code: code, Message: msg}
	switch code {
	case CodeGraphCycle:
		return &GraphCycleError{base}
	case CodeValidation:
		return &ValidationError{base}
	case CodeShape:
		return &ShapeError{base}
	case CodeType:
		return &TypeError{base}
	case CodeUnsupported:
		return &UnsupportedError{base}
	case CodeFormat:
		return &FormatError{base}
	case CodeOutOfMemory:
		return &OutOfMemoryError{base}
	case CodeDevice:
		return &DeviceError{base}
	case CodeCompile:
		return &CompileError{base}
	case CodeInvalidArgument:
		return &InvalidArgumentError{base}
	case CodeCancelled:
		return &CancelledError{base}
	}
	base.Code = CodeError
	if code != CodeError {
		base.Message = fmt.Sprintf("%s (status %d)", msg, int(code))
	}
	return &base
}

// errorf makes a typed error raised by this package itself, in NEF's message style.
func errorf(code Code, format string, args ...any) error {
	return newError(code, fmt.Sprintf(format, args...))
}
