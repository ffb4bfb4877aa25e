package nef

// The C-callable side of Generate's callback. A file with //export may only declare things in
// its preamble, so it is apart from gonef.h's inline helpers.

// #include <stddef.h>
// #include <stdint.h>
import "C"

import "runtime/cgo"

//export gonefPiece
func gonefPiece(piece *C.char, n C.size_t, user C.uintptr_t) C.int {
	return C.int(cgo.Handle(user).Value().(*pieceSink).deliver(C.GoStringN(piece, C.int(n))))
}
