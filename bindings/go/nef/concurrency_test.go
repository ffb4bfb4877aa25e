package nef_test

// Goroutines: graph runs in parallel on one graph, lazy ops on shared nodes, specializations of
// an imported model, and Close racing with use. Run with -race (make test-go does).

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

// mlpRef is softmax(relu(x @ w1 + b1) @ w2) in float64.
func mlpRef(x, w1, b1, w2 []float64, m, k, h, n int) []float64 {
	z := matmulRef(x, w1, m, k, h)
	for i := range z {
		z[i] = math.Max(z[i]+b1[i%h], 0)
	}
	o := matmulRef(z, w2, m, h, n)
	for i := 0; i < m; i++ {
		row := o[i*n : (i+1)*n]
		mx, s := math.Inf(-1), 0.0
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		for j := range row {
			row[j] = math.Exp(row[j] - mx)
			s += row[j]
		}
		for j := range row {
			row[j] /= s
		}
	}
	return o
}

func TestConcurrentRunsAndLazyOps(t *testing.T) {
	r := newRand(t)
	const m, k, h, n = 8, 16, 32, 10
	w1 := widen(f32(randFloats(r, k*h, -0.5, 0.5)))
	b1 := widen(f32(randFloats(r, h, -0.5, 0.5)))
	w2 := widen(f32(randFloats(r, h*n, -0.5, 0.5)))
	w1n := nef.Tensor(f32(w1), []int{k, h})
	x := nef.Placeholder("x", []int{m, k}, nef.Float32)
	y := nef.Softmax(nef.MatMul(nef.Relu(nef.Add(nef.MatMul(x, w1n), nef.Tensor(f32(b1), nil))),
		nef.Tensor(f32(w2), []int{h, n})), -1)
	path := filepath.Join(t.TempDir(), "mlp.nef")
	if err := y.Build(path); err != nil {
		t.Fatal(err)
	}
	g, err := nef.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	const runners, runs = 8, 25
	var wg sync.WaitGroup
	var done atomic.Int64
	failures := make(chan string, 64)
	fail := func(format string, args ...any) {
		select {
		case failures <- fmt.Sprintf(format, args...):
		default:
		}
	}
	for gi := 0; gi < runners; gi++ {
		wg.Add(1)
		go func(gi int) {
			defer wg.Done()
			rr := rand.New(rand.NewSource(seed + int64(gi)))
			for i := 0; i < runs; i++ {
				xv := widen(f32(randFloats(rr, m*k, -2, 2)))
				out, err := g.Run(map[string]*nef.Node{"x": nef.Tensor(f32(xv), []int{m, k})})
				if err != nil {
					fail("runner %d: %v", gi, err)
					return
				}
				got, err := out["output"].AsFloat64s()
				if err != nil {
					fail("runner %d: %v", gi, err)
					return
				}
				want := mlpRef(xv, w1, b1, w2, m, k, h, n)
				for j := range want {
					if math.Abs(got[j]-want[j]) > 1e-5 {
						fail("runner %d run %d: output[%d] = %v, want %v", gi, i, j, got[j], want[j])
						return
					}
				}
				if i%2 == 0 {
					out["output"].Close()
				} // the others are left to the finalizer
				done.Add(1)
			}
		}(gi)
	}
	// meanwhile: lazy ops on a node the graph was built from, executed from several goroutines
	w1t := nef.Transpose(w1n)
	for gi := 0; gi < 4; gi++ {
		wg.Add(1)
		go func(gi int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				scale := float64(gi*20 + i + 1)
				s := nef.Sum(nef.Mul(nef.MatMul(w1t, w1n), nef.Scalar(scale, nef.Float32)))
				v, err := s.Item()
				if err != nil {
					fail("lazy %d: %v", gi, err)
					return
				}
				want := 0.0
				for a := 0; a < h; a++ {
					for b := 0; b < h; b++ {
						for c := 0; c < k; c++ {
							want += w1[c*h+a] * w1[c*h+b]
						}
					}
				}
				want *= scale
				if math.Abs(v-want) > 1e-4*math.Max(1, math.Abs(want)) {
					fail("lazy %d: sum %v, want %v", gi, v, want)
					return
				}
				if _, err := nef.Stats(); err != nil {
					fail("stats: %v", err)
				}
			}
		}(gi)
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if done.Load() != runners*runs && !t.Failed() {
		t.Errorf("%d runs completed, want %d", done.Load(), runners*runs)
	}
}

// An imported model with an unbound dim specializes per binding, from several goroutines.
func TestConcurrentONNXSpecializations(t *testing.T) {
	g, err := nef.FromONNXBytes(reluONNX, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for gi := 0; gi < 6; gi++ {
		wg.Add(1)
		go func(gi int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				n := 1 + (gi+i)%5
				v := make([]float32, 2*n)
				for j := range v {
					v[j] = float32(j*(gi+1)) - float32(n)
				}
				out, err := g.Run(map[string]*nef.Node{"x": nef.Tensor(v, []int{n, 2})})
				if err != nil {
					errs <- err
					return
				}
				got, err := out["y"].Float32s()
				if err != nil {
					errs <- err
					return
				}
				for j, x := range v {
					if float64(got[j]) != math.Max(float64(x), 0) {
						errs <- fmt.Errorf("goroutine %d n=%d: y[%d] = %v for x %v", gi, n, j, got[j], x)
						return
					}
				}
			}
		}(gi)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Closing a node or a graph while other goroutines use it: calls in flight finish, later ones
// get *InvalidArgumentError, nothing crashes or leaks.
func TestCloseRacesWithUse(t *testing.T) {
	x := nef.Placeholder("x", []int{64}, nef.Float32)
	path := filepath.Join(t.TempDir(), "exp.nef")
	if err := nef.Exp(x).Build(path); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		g, err := nef.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		in := nef.Tensor(make([]float32, 64), nil)
		var wg sync.WaitGroup
		var ok, closedErrs, other atomic.Int64
		start := make(chan struct{})
		for gi := 0; gi < 4; gi++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 200; i++ {
					var err error
					if i%2 == 0 {
						var out map[string]*nef.Node
						out, err = g.Run(map[string]*nef.Node{"x": in})
						if err == nil {
							if v, e := out["output"].Float32s(); e != nil || v[0] != 1 {
								other.Add(1)
							}
						}
					} else {
						_, err = nef.Relu(in).Float32s()
					}
					var ia *nef.InvalidArgumentError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &ia):
						closedErrs.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
		close(start)
		if round%2 == 0 {
			in.Close()
		}
		g.Close()
		wg.Wait()
		if other.Load() != 0 || ok.Load()+closedErrs.Load() != 800 {
			t.Fatalf("round %d: %d ok, %d closed, %d other failures", round, ok.Load(), closedErrs.Load(), other.Load())
		}
		if closedErrs.Load() == 0 {
			t.Logf("round %d: every call finished before Close", round)
		}
		in.Close()
	}
}
