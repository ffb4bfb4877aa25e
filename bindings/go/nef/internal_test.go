package nef

import (
	"errors"
	"testing"
)

// Every status code maps to its typed error, named as the C API names it. (CompileError and
// the generic NEFError have no trigger reachable through the API on a CPU-only build, so this
// mapping is where they are tested.)
func TestErrorCodesMatchC(t *testing.T) {
	for code := CodeError; code <= CodeCancelled; code++ {
		if got, want := code.String(), cStatusName(code); got != want {
			t.Errorf("code %d: Go name %q, C name %q", int(code), got, want)
		}
		err := newError(code, "[op] message")
		var base *Error
		if !errors.As(err, &base) || base.Code != code || base.Message != "[op] message" {
			t.Errorf("code %d: %#v does not unwrap to its *Error", int(code), err)
		}
		if err.Error() != code.String()+": [op] message" {
			t.Errorf("code %d: Error() = %q", int(code), err.Error())
		}
		matches := 0
		for _, target := range []any{new(*GraphCycleError), new(*ValidationError), new(*ShapeError),
			new(*TypeError), new(*UnsupportedError), new(*FormatError), new(*OutOfMemoryError),
			new(*DeviceError), new(*CompileError), new(*InvalidArgumentError), new(*CancelledError)} {
			if errors.As(err, target) {
				matches++
			}
		}
		if want := map[bool]int{true: 0, false: 1}[code == CodeError]; matches != want {
			t.Errorf("code %d matches %d typed errors, want %d", int(code), matches, want)
		}
	}
	var ce *CompileError
	if !errors.As(newError(CodeCompile, "x"), &ce) || ce.Code != CodeCompile {
		t.Error("CompileError")
	}
	unknown := newError(Code(42), "m")
	var base *Error
	if !errors.As(unknown, &base) || base.Code != CodeError || base.Message != "m (status 42)" {
		t.Errorf("an unknown status: %#v", unknown)
	}
}

// Close while a call holds the node: the handle is freed when the call ends, not before.
func TestCloseWhilePinned(t *testing.T) {
	n := Tensor([]float32{1, 2}, nil)
	if _, err := n.pin("test", 0); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if n.h == nil {
		t.Fatal("a pinned handle was freed by Close")
	}
	if err := n.check("test", 0); err == nil {
		t.Fatal("a closed node can be pinned again")
	}
	n.unpin()
	if n.h != nil {
		t.Fatal("the last unpin of a closed node did not free it")
	}
}
