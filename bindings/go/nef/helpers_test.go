package nef_test

// Test helpers: fresh random inputs (the seed is logged; NEF_TEST_SEED repeats a run), float64
// references, a .npy reader, the Python fixtures, and the handle check that ends the run.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

var seed = func() int64 {
	if s := os.Getenv("NEF_TEST_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return v
		}
	}
	return time.Now().UnixNano()
}()

// newRand gives each test its own generator from the run's seed.
func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	t.Logf("NEF_TEST_SEED=%d", seed)
	return rand.New(rand.NewSource(seed + int64(len(t.Name()))*7919))
}

func TestMain(m *testing.M) {
	fmt.Printf("NEF_TEST_SEED=%d\n", seed)
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	if code == 0 {
		// No leaks: once the garbage is collected (finalizers run), no handle is left.
		h, ok := waitForHandles(nef.Handles{}, 20*time.Second)
		if !ok {
			fmt.Printf("FAIL: handles still alive after every test and GC: %+v\n", h)
			code = 1
		} else {
			fmt.Printf("live handles after the tests and GC: %+v\n", h)
		}
	}
	os.Exit(code)
}

// waitForHandles collects garbage until the live handle counts are at most want.
func waitForHandles(want nef.Handles, timeout time.Duration) (nef.Handles, bool) {
	deadline := time.Now().Add(timeout)
	for {
		runtime.GC()
		h := nef.LiveHandles()
		if h.Tensors <= want.Tensors && h.Graphs <= want.Graphs && h.Attrs <= want.Attrs {
			return h, true
		}
		if time.Now().After(deadline) {
			return h, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle collects garbage until the handle counts stop changing, so a test can count deltas.
func settle() nef.Handles {
	prev := nef.LiveHandles()
	for stable := 0; stable < 3; {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
		h := nef.LiveHandles()
		if h == prev {
			stable++
		} else {
			stable = 0
		}
		prev = h
	}
	return prev
}

func randFloats(r *rand.Rand, n int, lo, hi float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + (hi-lo)*r.Float64()
	}
	return out
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// widen rounds through float32, so references start from the exact values NEF sees.
func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// must reads a node's value as float64s, failing the test on an error.
func must(t *testing.T, n *nef.Node) []float64 {
	t.Helper()
	v, err := n.AsFloat64s()
	if err != nil {
		t.Fatalf("%v: %v", n, err)
	}
	return v
}

// expectClose compares elementwise: |got - want| <= atol + rtol*|want|; NaNs must match.
func expectClose(t *testing.T, what string, got, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		g, w := got[i], want[i]
		if math.IsNaN(w) || math.IsNaN(g) {
			if math.IsNaN(w) != math.IsNaN(g) {
				bad++
				if bad <= 5 {
					t.Errorf("%s[%d] = %v, want %v", what, i, g, w)
				}
			}
			continue
		}
		if math.IsInf(w, 0) && g == w {
			continue
		}
		if math.Abs(g-w) > atol+rtol*math.Abs(w) || math.IsNaN(g-w) {
			bad++
			if bad <= 5 {
				t.Errorf("%s[%d] = %v, want %v (diff %g)", what, i, g, w, math.Abs(g-w))
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(got))
	}
}

func expectShape(t *testing.T, n *nef.Node, want ...int) {
	t.Helper()
	if err := n.Err(); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	got := n.Shape()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%v: shape %v, want %v", n, got, want)
	}
}

// ---- reference helpers ----------------------------------------------------------------------

func strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// broadcastShape is numpy's broadcast of two shapes.
func broadcastShape(a, b []int) []int {
	n := len(a)
	if len(b) > n {
		n = len(b)
	}
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		if da == 1 {
			out[i] = db
		} else {
			out[i] = da
		}
	}
	return out
}

// bindex maps an output index to an input's flat index under broadcasting.
func bindex(out []int, flat int, in []int) int {
	ost := strides(out)
	ist := strides(in)
	idx := 0
	for d := range out {
		c := (flat / ost[d]) % out[d]
		j := d - (len(out) - len(in))
		if j >= 0 && in[j] != 1 {
			idx += c * ist[j]
		}
	}
	return idx
}

// ---- .npy ------------------------------------------------------------------------------------

var npyHeader = regexp.MustCompile(`'descr':\s*'([^']+)',\s*'fortran_order':\s*(True|False),\s*'shape':\s*\(([^)]*)\)`)

// readNpy reads a C-order little-endian .npy file into an Array.
func readNpy(t *testing.T, path string) *nef.Array {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		t.Fatalf("%s: not a .npy file", path)
	}
	var hlen, start int
	if b[6] == 1 {
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	} else {
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	}
	m := npyHeader.FindStringSubmatch(string(b[start : start+hlen]))
	if m == nil || m[2] == "True" {
		t.Fatalf("%s: unsupported header %q", path, b[start:start+hlen])
	}
	shape := []int{}
	for _, s := range strings.Split(m[3], ",") {
		if s = strings.TrimSpace(s); s != "" {
			d, _ := strconv.Atoi(s)
			shape = append(shape, d)
		}
	}
	raw := b[start+hlen:]
	n := prod(shape)
	a := &nef.Array{Shape: shape}
	read := func(data any) {
		if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, data); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	switch m[1] {
	case "<f4":
		a.DType, a.Data = nef.Float32, make([]float32, n)
	case "<f8":
		a.DType, a.Data = nef.Float64, make([]float64, n)
	case "<f2":
		a.DType, a.Data = nef.Float16, make([]nef.F16, n)
	case "|i1":
		a.DType, a.Data = nef.Int8, make([]int8, n)
	case "|u1":
		a.DType, a.Data = nef.Uint8, make([]uint8, n)
	case "<i4":
		a.DType, a.Data = nef.Int32, make([]int32, n)
	case "<i8":
		a.DType, a.Data = nef.Int64, make([]int64, n)
	case "|b1":
		a.DType, a.Data = nef.Bool, make([]bool, n)
	default:
		t.Fatalf("%s: dtype %s", path, m[1])
	}
	read(a.Data)
	return a
}

// nodeOf makes a node holding an Array's data.
func nodeOf(a *nef.Array) *nef.Node { return nef.Tensor(a.Data, a.Shape) }

// ---- the Python fixtures ----------------------------------------------------------------------

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
)

// python is the interpreter with the nef package: NEF_PYTHON (make test-go sets it), else the
// repository's .venv.
func python() string {
	if p := os.Getenv("NEF_PYTHON"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "..", ".venv", "bin", "python"))
	return p
}

// fixtures runs testdata/fixtures.py once per test run and returns its output folder.
func fixtures(t *testing.T) string {
	t.Helper()
	fixtureOnce.Do(func() {
		py := python()
		if _, err := os.Stat(py); err != nil {
			fixtureErr = fmt.Errorf("no Python with the nef package at %s (run make build, or set NEF_PYTHON): %v", py, err)
			return
		}
		dir, err := os.MkdirTemp("", "nef-go-fixtures")
		if err != nil {
			fixtureErr = err
			return
		}
		fixtureDir = dir
		start := time.Now()
		out, err := exec.Command(py, filepath.Join("testdata", "fixtures.py"), dir).CombinedOutput()
		if err != nil {
			fixtureErr = fmt.Errorf("testdata/fixtures.py: %v\n%s", err, out)
			return
		}
		fmt.Printf("Python fixtures written in %.1fs\n", time.Since(start).Seconds())
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureDir
}
