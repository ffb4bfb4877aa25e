package nef

// The cgo layer: where the C API's header and library are, and the one helper that makes every
// C call (so that a failed status and nef_last_error are read on the same OS thread).

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -L${SRCDIR}/../../../build/release -lnef -Wl,-rpath,${SRCDIR}/../../../build/release
#include "gonef.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// lazyMu serializes every C call on tensor handles except graph runs on materialized inputs,
// which is the discipline nef.h asks for: executing a lazy tensor writes graph nodes that other
// calls may be reading. Graph runs do not take it, so they proceed in parallel.
var lazyMu sync.Mutex

// call runs f, one or more C calls, on one locked OS thread. nef_last_error is per thread and a
// goroutine may move between threads between two cgo calls, so a failed status is turned into
// an error here, before the thread is released.
func call(f func() C.nef_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if st := f(); st != C.NEF_OK {
		return newError(Code(st), C.GoString(C.nef_last_error()))
	}
	return nil
}

// cStrings copies Go strings to C; free releases them.
type cStrings []*C.char

func newCStrings(s []string) cStrings {
	out := make(cStrings, len(s))
	for i, v := range s {
		out[i] = C.CString(v)
	}
	return out
}

func (c cStrings) ptr() **C.char {
	if len(c) == 0 {
		return nil
	}
	return &c[0]
}

func (c cStrings) free() {
	for _, p := range c {
		C.free(unsafe.Pointer(p))
	}
}

// int64s converts Go ints (shapes, axes) to the C API's int64_t arrays.
func int64s(v []int) []C.int64_t {
	out := make([]C.int64_t, len(v))
	for i, x := range v {
		out[i] = C.int64_t(x)
	}
	return out
}

func int64Ptr(v []C.int64_t) *C.int64_t {
	if len(v) == 0 {
		return nil
	}
	return &v[0]
}
