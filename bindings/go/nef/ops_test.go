package nef_test

// Op results against float64 references computed here, on fresh random inputs of odd sizes,
// broadcast and strided operands, empty tensors, and every dtype.

import (
	"errors"
	"math"
	"math/rand"
	"testing"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

var unaryCases = []struct {
	name   string
	op     func(*nef.Node) *nef.Node
	ref    func(float64) float64
	lo, hi float64
}{
	{"neg", nef.Neg, func(x float64) float64 { return -x }, -5, 5},
	{"abs", nef.Abs, math.Abs, -5, 5},
	{"sign", nef.Sign, sign, -2, 2},
	{"relu", nef.Relu, func(x float64) float64 { return math.Max(x, 0) }, -3, 3},
	{"floor", nef.Floor, math.Floor, -5, 5},
	{"ceil", nef.Ceil, math.Ceil, -5, 5},
	{"round", nef.Round, math.RoundToEven, -5, 5},
	{"exp", nef.Exp, math.Exp, -6, 6},
	{"log", nef.Log, math.Log, 0.01, 50},
	{"sqrt", nef.Sqrt, math.Sqrt, 0, 50},
	{"rsqrt", nef.Rsqrt, func(x float64) float64 { return 1 / math.Sqrt(x) }, 0.01, 50},
	{"reciprocal", nef.Reciprocal, func(x float64) float64 { return 1 / x }, 0.1, 10},
	{"tanh", nef.Tanh, math.Tanh, -5, 5},
	{"sigmoid", nef.Sigmoid, sigmoid, -8, 8},
	{"silu", nef.Silu, func(x float64) float64 { return x * sigmoid(x) }, -8, 8},
	{"erf", nef.Erf, math.Erf, -4, 4},
	{"sin", nef.Sin, math.Sin, -6, 6},
	{"cos", nef.Cos, math.Cos, -6, 6},
	{"tan", nef.Tan, math.Tan, -1.4, 1.4},
	{"asin", nef.Asin, math.Asin, -0.99, 0.99},
	{"acos", nef.Acos, math.Acos, -0.99, 0.99},
	{"atan", nef.Atan, math.Atan, -20, 20},
	{"sinh", nef.Sinh, math.Sinh, -5, 5},
	{"cosh", nef.Cosh, math.Cosh, -5, 5},
	{"asinh", nef.Asinh, math.Asinh, -20, 20},
	{"acosh", nef.Acosh, math.Acosh, 1.01, 20},
	{"atanh", nef.Atanh, math.Atanh, -0.99, 0.99},
	{"gelu", nef.Gelu, func(x float64) float64 { return x * 0.5 * (1 + math.Erf(x/math.Sqrt2)) }, -5, 5},
	{"gelu_tanh", nef.GeluTanh, func(x float64) float64 {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}, -5, 5},
}

func TestUnaryOps(t *testing.T) {
	r := newRand(t)
	shape := []int{3, 7, 5}
	n := prod(shape)
	for _, c := range unaryCases {
		x64 := randFloats(r, n, c.lo, c.hi)
		if c.name == "round" || c.name == "floor" || c.name == "ceil" {
			for i := 0; i < n; i += 4 {
				x64[i] = math.Floor(x64[i]) + 0.5 // ties, exact in float32 too
			}
		}
		x32 := f32(x64)
		// float32 (vectorized kernels: a few ulp) and float64 (libm: nearly exact)
		got32 := must(t, c.op(nef.Tensor(x32, shape)))
		want32 := make([]float64, n)
		for i, v := range widen(x32) {
			want32[i] = c.ref(v)
		}
		expectClose(t, c.name+" float32", got32, want32, 1e-5, 1e-6)
		got64 := must(t, c.op(nef.Tensor(x64, shape)))
		want64 := make([]float64, n)
		for i, v := range x64 {
			want64[i] = c.ref(v)
		}
		expectClose(t, c.name+" float64", got64, want64, 1e-12, 1e-14)

		// a strided (transposed) operand
		xt := nef.Transpose(nef.Tensor(x64, shape), 2, 0, 1)
		gotT := must(t, c.op(xt))
		st := strides(shape)
		wantT := make([]float64, 0, n)
		for k := 0; k < shape[2]; k++ {
			for i := 0; i < shape[0]; i++ {
				for j := 0; j < shape[1]; j++ {
					wantT = append(wantT, c.ref(x64[i*st[0]+j*st[1]+k]))
				}
			}
		}
		expectClose(t, c.name+" transposed", gotT, wantT, 1e-12, 1e-14)
	}
	// dtype rules: exp of an int is float32; neg keeps int64; logical_not gives bool.
	ints := nef.Tensor([]int64{-2, 0, 3}, nil)
	if d := nef.Exp(ints).DType(); d != nef.Float32 {
		t.Errorf("exp(int64) is %v, want float32", d)
	}
	if v, err := nef.Neg(ints).Int64s(); err != nil || v[0] != 2 || v[2] != -3 {
		t.Errorf("neg(int64) = %v, %v", v, err)
	}
	if v, err := nef.LogicalNot(ints).Bools(); err != nil || v[0] || !v[1] || v[2] {
		t.Errorf("logical_not = %v, %v", v, err)
	}
}

func numpyMod(a, b float64) float64 {
	m := math.Mod(a, b)
	if m != 0 && (m < 0) != (b < 0) {
		m += b
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestBinaryOpsBroadcast(t *testing.T) {
	r := newRand(t)
	as, bs := []int{4, 1, 5}, []int{3, 1}
	out := broadcastShape(as, bs)
	cases := []struct {
		name   string
		op     func(a, b *nef.Node) *nef.Node
		ref    func(a, b float64) float64
		lo, hi float64 // operand range; small integers when equal values matter
		ints   bool
	}{
		{"add", nef.Add, func(a, b float64) float64 { return a + b }, -5, 5, false},
		{"sub", nef.Sub, func(a, b float64) float64 { return a - b }, -5, 5, false},
		{"mul", nef.Mul, func(a, b float64) float64 { return a * b }, -5, 5, false},
		{"div", nef.Div, func(a, b float64) float64 { return a / b }, 0.5, 5, false},
		{"pow", nef.Pow, math.Pow, 0.5, 2, false},
		{"maximum", nef.Maximum, math.Max, -5, 5, false},
		{"minimum", nef.Minimum, math.Min, -5, 5, false},
		{"mod", nef.Mod, numpyMod, -7, 7, false},
		{"equal", nef.Equal, func(a, b float64) float64 { return b2f(a == b) }, -2, 2, true},
		{"not_equal", nef.NotEqual, func(a, b float64) float64 { return b2f(a != b) }, -2, 2, true},
		{"less", nef.Less, func(a, b float64) float64 { return b2f(a < b) }, -2, 2, true},
		{"less_equal", nef.LessEqual, func(a, b float64) float64 { return b2f(a <= b) }, -2, 2, true},
		{"greater", nef.Greater, func(a, b float64) float64 { return b2f(a > b) }, -2, 2, true},
		{"greater_equal", nef.GreaterEqual, func(a, b float64) float64 { return b2f(a >= b) }, -2, 2, true},
		{"logical_and", nef.LogicalAnd, func(a, b float64) float64 { return b2f(a != 0 && b != 0) }, -1, 2, true},
		{"logical_or", nef.LogicalOr, func(a, b float64) float64 { return b2f(a != 0 || b != 0) }, -1, 2, true},
	}
	for _, c := range cases {
		a64, b64 := randFloats(r, prod(as), c.lo, c.hi), randFloats(r, prod(bs), c.lo, c.hi)
		if c.ints {
			for i := range a64 {
				a64[i] = math.Floor(a64[i])
			}
			for i := range b64 {
				b64[i] = math.Floor(b64[i])
			}
		}
		if c.name == "mod" {
			for i := range b64 {
				if math.Abs(b64[i]) < 0.5 {
					b64[i] = 1.5
				}
			}
		}
		a32, b32 := f32(a64), f32(b64)
		res := c.op(nef.Tensor(a32, as), nef.Tensor(b32, bs))
		expectShape(t, res, out...)
		got := must(t, res)
		want := make([]float64, prod(out))
		aw, bw := widen(a32), widen(b32)
		for i := range want {
			want[i] = c.ref(aw[bindex(out, i, as)], bw[bindex(out, i, bs)])
		}
		expectClose(t, c.name, got, want, 2e-6, 1e-6)
	}
}

func TestIntegerOpsAndPromotion(t *testing.T) {
	a := nef.Tensor([]int64{-7, 7, -7, 7, 5}, nil)
	b := nef.Tensor([]int64{2, -2, -2, 2, 0}, nil)
	if v, err := nef.Mod(a, b).Int64s(); err != nil || !equalInts(v, []int64{1, -1, -1, 1, 0}) {
		t.Errorf("int64 mod = %v, %v (numpy: the divisor's sign; x %% 0 = 0)", v, err)
	}
	if v, err := nef.Pow(nef.Tensor([]int32{2, 3, -2, 1}, nil), nef.Tensor([]int32{10, 2, 3, -5}, nil)).Int32s(); err != nil ||
		!equalInts32(v, []int32{1024, 9, -8, 1}) {
		t.Errorf("int32 pow = %v, %v", v, err)
	}
	d := nef.Div(nef.Tensor([]int32{7, -7}, nil), nef.Tensor([]int32{2, 2}, nil))
	if d.DType() != nef.Float32 {
		t.Errorf("int32 / int32 is %v, want float32", d.DType())
	}
	expectClose(t, "int div", must(t, d), []float64{3.5, -3.5}, 0, 0)
	for _, c := range []struct {
		a, b *nef.Node
		want nef.DType
	}{
		{nef.Tensor([]int32{1}, nil), nef.Tensor([]float32{1}, nil), nef.Float64},
		{nef.Tensor([]int8{1}, nil), nef.Tensor([]uint8{1}, nil), nef.Int16},
		{nef.Tensor([]uint32{1}, nil), nef.Tensor([]int32{1}, nil), nef.Int64},
		{nef.Tensor([]uint64{1}, nil), nef.Tensor([]int64{1}, nil), nef.Float64},
		{nef.Tensor([]uint16{1}, nil), nef.Tensor([]int8{1}, nil), nef.Int32},
		{nef.Tensor([]nef.F16{nef.F16FromFloat32(1)}, nil), nef.Tensor([]nef.BF16{nef.BF16FromFloat32(1)}, nil), nef.Float32},
		{nef.Tensor([]bool{true}, nil), nef.Tensor([]bool{true}, nil), nef.Bool},
		{nef.Tensor([]int64{1}, nil), nef.Tensor([]float64{1}, nil), nef.Float64},
	} {
		if got := nef.Add(c.a, c.b).DType(); got != c.want {
			t.Errorf("%v + %v is %v, want %v (numpy's promotion)", c.a.DType(), c.b.DType(), got, c.want)
		}
	}
	if v, err := nef.Add(nef.Tensor([]bool{true, false, false}, nil), nef.Tensor([]bool{true, true, false}, nil)).Bools(); err != nil ||
		!v[0] || !v[1] || v[2] {
		t.Errorf("bool + bool (or) = %v, %v", v, err)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalInts32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// matmulRef multiplies [m,k] by [k,n] in float64.
func matmulRef(a, b []float64, m, k, n int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += a[i*k+p] * b[p*n+j]
			}
			out[i*n+j] = s
		}
	}
	return out
}

func TestMatMul(t *testing.T) {
	r := newRand(t)
	for _, dims := range [][3]int{{3, 5, 7}, {1, 1, 1}, {17, 33, 9}, {64, 70, 65}} {
		m, k, n := dims[0], dims[1], dims[2]
		a, b := f32(randFloats(r, m*k, -1, 1)), f32(randFloats(r, k*n, -1, 1))
		c := nef.MatMul(nef.Tensor(a, []int{m, k}), nef.Tensor(b, []int{k, n}))
		expectShape(t, c, m, n)
		expectClose(t, "matmul", must(t, c), matmulRef(widen(a), widen(b), m, k, n), 1e-5, 1e-5)
	}
	// batch dims broadcast: [2,1,3,4] @ [5,4,2] -> [2,5,3,2]
	a := randFloats(r, 2*3*4, -1, 1)
	b := randFloats(r, 5*4*2, -1, 1)
	c := nef.MatMul(nef.Tensor(a, []int{2, 1, 3, 4}), nef.Tensor(b, []int{5, 4, 2}))
	expectShape(t, c, 2, 5, 3, 2)
	var want []float64
	for i := 0; i < 2; i++ {
		for j := 0; j < 5; j++ {
			want = append(want, matmulRef(a[i*12:(i+1)*12], b[j*8:(j+1)*8], 3, 4, 2)...)
		}
	}
	expectClose(t, "batched matmul", must(t, c), want, 1e-12, 1e-12)
	// 1-D operands: the added dim is removed
	v := nef.Tensor([]float64{1, 2, 3, 4}, nil)
	mv := nef.MatMul(nef.Tensor(a[:12], []int{3, 4}), v)
	expectShape(t, mv, 3)
	expectClose(t, "matrix @ vector", must(t, mv), matmulRef(a[:12], []float64{1, 2, 3, 4}, 3, 4, 1), 1e-12, 0)
	dot := nef.MatMul(v, v)
	expectShape(t, dot)
	if x, err := dot.Item(); err != nil || x != 30 {
		t.Errorf("vector @ vector = %v, %v", x, err)
	}
	// exact integer matmul, and a transposed (strided) operand
	ai := nef.Tensor([]int32{1, 2, 3, 4, 5, 6}, []int{2, 3})
	if got, err := nef.MatMul(ai, nef.Transpose(ai)).Int32s(); err != nil || !equalInts32(got, []int32{14, 32, 32, 77}) {
		t.Errorf("int32 a @ a.T = %v, %v", got, err)
	}
}

// reduceRef reduces x (shape) over axes with f, starting from init.
func reduceRef(x []float64, shape, axes []int, init float64, f func(acc, v float64) float64) ([]float64, []int) {
	red := map[int]bool{}
	for _, a := range axes {
		red[(a+len(shape))%len(shape)] = true
	}
	if len(axes) == 0 {
		for d := range shape {
			red[d] = true
		}
	}
	var outShape []int
	for d, n := range shape {
		if !red[d] {
			outShape = append(outShape, n)
		}
	}
	out := make([]float64, prod(outShape))
	for i := range out {
		out[i] = init
	}
	st := strides(shape)
	ost := strides(outShape)
	for i, v := range x {
		o, k := 0, 0
		for d := range shape {
			if !red[d] {
				o += (i / st[d] % shape[d]) * ost[k]
				k++
			}
		}
		out[o] = f(out[o], v)
	}
	return out, outShape
}

func TestReductions(t *testing.T) {
	r := newRand(t)
	shape := []int{3, 4, 5}
	x := widen(f32(randFloats(r, prod(shape), 0.5, 1.5)))
	xn := nef.Tensor(f32(x), shape)
	add := func(a, v float64) float64 { return a + v }
	for _, axes := range [][]int{{1}, {0, 2}, {-1}, nil} {
		sum, s := reduceRef(x, shape, axes, 0, add)
		got := nef.Sum(xn, axes...)
		expectShape(t, got, s...)
		expectClose(t, "sum", must(t, got), sum, 1e-5, 1e-5)
		mean := append([]float64{}, sum...)
		for i := range mean {
			mean[i] /= float64(prod(shape) / prod(s))
		}
		expectClose(t, "mean", must(t, nef.Mean(xn, axes...)), mean, 1e-5, 1e-6)
		mx, _ := reduceRef(x, shape, axes, math.Inf(-1), math.Max)
		expectClose(t, "max", must(t, nef.Max(xn, axes...)), mx, 0, 0)
		mn, _ := reduceRef(x, shape, axes, math.Inf(1), math.Min)
		expectClose(t, "min", must(t, nef.Min(xn, axes...)), mn, 0, 0)
		pr, _ := reduceRef(x, shape, axes, 1, func(a, v float64) float64 { return a * v })
		expectClose(t, "prod", must(t, nef.Prod(xn, axes...)), pr, 1e-5, 1e-6)
	}
	kd := nef.Reduce("sum", xn, []int{1}, true)
	expectShape(t, kd, 3, 1, 5)
	// argmax/argmin along an axis, int64, first occurrence on ties
	am := nef.ArgMax(xn, 1)
	if am.DType() != nef.Int64 {
		t.Errorf("argmax dtype %v", am.DType())
	}
	got, err := am.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for k := 0; k < 5; k++ {
			best := 0
			for j := 1; j < 4; j++ {
				if x[i*20+j*5+k] > x[i*20+best*5+k] {
					best = j
				}
			}
			if got[i*5+k] != int64(best) {
				t.Errorf("argmax[%d,%d] = %d, want %d", i, k, got[i*5+k], best)
			}
		}
	}
	ties := nef.Tensor([]float32{3, 1, 3, 1}, nil)
	if v, err := nef.ArgMin(ties, 0).Int64s(); err != nil || v[0] != 1 {
		t.Errorf("argmin with ties = %v, %v", v, err)
	}
	// sums of narrow ints are int64
	s8 := nef.Sum(nef.Tensor([]int8{100, 100, 100}, nil))
	if v, err := s8.Int64s(); err != nil || v[0] != 300 {
		t.Errorf("sum(int8) = %v, %v (%v)", v, err, s8.DType())
	}
}

func TestNeuralOps(t *testing.T) {
	r := newRand(t)
	rows, cols := 5, 9
	x := widen(f32(randFloats(r, rows*cols, -3, 3)))
	xn := nef.Tensor(f32(x), []int{rows, cols})
	softmax := make([]float64, len(x))
	logsm := make([]float64, len(x))
	ln := make([]float64, len(x))
	rms := make([]float64, len(x))
	w := widen(f32(randFloats(r, cols, 0.5, 1.5)))
	b := widen(f32(randFloats(r, cols, -1, 1)))
	for i := 0; i < rows; i++ {
		row := x[i*cols : (i+1)*cols]
		mx, sum, mean, sq := math.Inf(-1), 0.0, 0.0, 0.0
		for _, v := range row {
			mx = math.Max(mx, v)
			mean += v / float64(cols)
			sq += v * v / float64(cols)
		}
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		vr := 0.0
		for _, v := range row {
			vr += (v - mean) * (v - mean) / float64(cols)
		}
		for j, v := range row {
			softmax[i*cols+j] = math.Exp(v-mx) / sum
			logsm[i*cols+j] = v - mx - math.Log(sum)
			ln[i*cols+j] = (v-mean)/math.Sqrt(vr+1e-5)*w[j] + b[j]
			rms[i*cols+j] = v / math.Sqrt(sq+1e-6) * w[j]
		}
	}
	wn, bn := nef.Tensor(f32(w), nil), nef.Tensor(f32(b), nil)
	expectClose(t, "softmax", must(t, nef.Softmax(xn, -1)), softmax, 1e-5, 1e-7)
	expectClose(t, "log_softmax", must(t, nef.LogSoftmax(xn, 1)), logsm, 1e-5, 1e-5)
	expectClose(t, "layernorm", must(t, nef.LayerNorm(xn, wn, bn, 1e-5)), ln, 1e-4, 1e-5)
	expectClose(t, "rmsnorm", must(t, nef.RMSNorm(xn, wn, 1e-6)), rms, 1e-5, 1e-6)
	// softmax along axis 0 sums to one down the columns
	s0 := must(t, nef.Sum(nef.Softmax(xn, 0), 0))
	expectClose(t, "softmax axis 0", s0, []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}, 1e-6, 1e-6)

	// attention against the spelled-out formula, with causal and bool masks, and a scale
	B, Lq, Lk, D, Dv := 2, 3, 5, 4, 6
	q := randFloats(r, B*Lq*D, -1, 1)
	k := randFloats(r, B*Lk*D, -1, 1)
	v := randFloats(r, B*Lk*Dv, -1, 1)
	mask := make([]bool, Lq*Lk)
	for i := range mask {
		mask[i] = r.Intn(3) > 0
	}
	mask[0], mask[1], mask[2], mask[3], mask[4] = true, false, false, false, false
	ref := func(scale float64, causal bool, m []bool) []float64 {
		out := make([]float64, 0, B*Lq*Dv)
		for bi := 0; bi < B; bi++ {
			for i := 0; i < Lq; i++ {
				sc := make([]float64, Lk)
				mx := math.Inf(-1)
				for j := 0; j < Lk; j++ {
					sc[j] = math.Inf(-1)
					if (causal && j > i+Lk-Lq) || (m != nil && !m[i*Lk+j]) {
						continue
					}
					s := 0.0
					for d := 0; d < D; d++ {
						s += q[(bi*Lq+i)*D+d] * k[(bi*Lk+j)*D+d]
					}
					sc[j] = s * scale
					mx = math.Max(mx, sc[j])
				}
				sum := 0.0
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for d := 0; d < Dv; d++ {
					o := 0.0
					for j := range sc {
						o += sc[j] / sum * v[(bi*Lk+j)*Dv+d]
					}
					out = append(out, o)
				}
			}
		}
		return out
	}
	qn, kn, vn := nef.Tensor(q, []int{B, Lq, D}), nef.Tensor(k, []int{B, Lk, D}), nef.Tensor(v, []int{B, Lk, Dv})
	att := nef.Attention(qn, kn, vn, nil, false)
	expectShape(t, att, B, Lq, Dv)
	expectClose(t, "attention", must(t, att), ref(1/math.Sqrt(float64(D)), false, nil), 1e-10, 1e-12)
	expectClose(t, "causal attention", must(t, nef.Attention(qn, kn, vn, nil, true)),
		ref(1/math.Sqrt(float64(D)), true, nil), 1e-10, 1e-12)
	mn := nef.Tensor(mask, []int{Lq, Lk})
	expectClose(t, "masked, scaled attention", must(t, nef.ScaledAttention(qn, kn, vn, mn, 0.3, false)),
		ref(0.3, false, mask), 1e-10, 1e-12)
}

func TestLayoutOps(t *testing.T) {
	x := nef.Arange(0, 24, 1, nef.Int64)
	x3 := nef.Reshape(x, 2, 3, 4)
	expectShape(t, x3, 2, 3, 4)
	expectShape(t, nef.Reshape(x3, 4, -1), 4, 6)
	tr := nef.Transpose(x3, 2, 0, 1)
	expectShape(t, tr, 4, 2, 3)
	got, _ := tr.Int64s()
	for k := 0; k < 4; k++ {
		for i := 0; i < 2; i++ {
			for j := 0; j < 3; j++ {
				if got[k*6+i*3+j] != int64(i*12+j*4+k) {
					t.Fatalf("transpose[%d,%d,%d] = %d", k, i, j, got[k*6+i*3+j])
				}
			}
		}
	}
	expectShape(t, nef.Transpose(x3), 4, 3, 2)
	ints := func(n *nef.Node) []int64 {
		t.Helper()
		v, err := n.Int64s()
		if err != nil {
			t.Fatalf("%v: %v", n, err)
		}
		return v
	}
	check := func(what string, n *nef.Node, want ...int64) {
		t.Helper()
		if got := ints(n); !equalInts(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	ten := nef.Arange(0, 10, 1, nef.Int64)
	check("slice 8:1:-3", nef.Slice(ten, []int{8}, []int{1}, []int{-3}), 8, 5, 2)
	check("slice ::-1", nef.Slice(ten, []int{9}, []int{-1}, []int{-1}), 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
	check("slice -3:", nef.Slice(ten, []int{-3}, []int{10}, []int{1}), 7, 8, 9)
	m := nef.Reshape(nef.Arange(0, 6, 1, nef.Int64), 2, 3)
	check("concat axis 1", nef.Concat(1, m, m), 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5)
	st := nef.Stack(0, m, nef.Neg(m))
	expectShape(t, st, 2, 2, 3)
	check("stack", st, 0, 1, 2, 3, 4, 5, 0, -1, -2, -3, -4, -5)
	expectShape(t, nef.Stack(-1, m, m), 2, 3, 2)
	parts := nef.Split(m, []int{1, 2}, 1)
	check("split part 0", parts[0], 0, 3)
	check("split part 1", parts[1], 1, 2, 4, 5)
	check("broadcast_to", nef.BroadcastTo(nef.Tensor([]int64{1, 2}, nil), 2, 2), 1, 2, 1, 2)
	expectShape(t, nef.ExpandDims(m, 0, 3), 1, 2, 3, 1)
	expectShape(t, nef.Squeeze(nef.ExpandDims(m, 0, 3)), 2, 3)
	expectShape(t, nef.Squeeze(nef.ExpandDims(m, 0, 3), 0), 2, 3, 1)
	check("gather rows, negative index", nef.Gather(m, nef.Tensor([]int32{-1, 0, 1}, nil), 0), 3, 4, 5, 0, 1, 2, 3, 4, 5)
	check("gather along axis 1", nef.Gather(m, nef.Tensor([]int64{2, 2}, nil), 1), 2, 2, 5, 5)
	cond := nef.Tensor([]bool{true, false, true}, nil)
	check("where", nef.Where(cond, nef.Tensor([]int64{1, 2, 3}, nil), nef.Tensor([]int64{-1}, nil)), 1, -1, 3)
	f := nef.Tensor([]float32{-2.7, -0.5, 0.5, 2.7, 9}, nil)
	expectClose(t, "clip", must(t, nef.Clip(f, nef.Scalar(-1, nef.Float32), nef.Scalar(1, nef.Float32))), []float64{-1, -0.5, 0.5, 1, 1}, 0, 0)
	expectClose(t, "clip below only", must(t, nef.Clip(f, nef.Scalar(0, nef.Float32), nil)), []float64{0, 0, 0.5, 2.7, 9}, 1e-7, 0)
	expectClose(t, "clip above only", must(t, nef.Clip(f, nil, nef.Scalar(1, nef.Float32))), []float64{-2.7, -0.5, 0.5, 1, 1}, 1e-7, 0)
	expectClose(t, "clip no bounds", must(t, nef.Clip(f, nil, nil)), widen([]float32{-2.7, -0.5, 0.5, 2.7, 9}), 0, 0)
	if v, err := nef.Cast(f, nef.Int32).Int32s(); err != nil || !equalInts32(v, []int32{-2, 0, 0, 2, 9}) {
		t.Errorf("cast to int32 = %v, %v (truncates toward zero)", v, err)
	}
	if v, err := nef.Cast(nef.Tensor([]float32{0, -0.5, 3}, nil), nef.Bool).Bools(); err != nil || v[0] || !v[1] || !v[2] {
		t.Errorf("cast to bool = %v, %v", v, err)
	}
	// a view of a view, then compute: slices with steps of a transposed tensor
	g := nef.Slice(nef.Transpose(x3, 1, 0, 2), []int{2, 0, 3}, []int{-4, 2, -5}, []int{-2, 1, -2})
	expectShape(t, g, 2, 2, 2)
	check("strided views", nef.Add(g, nef.Scalar(0, nef.Int64)), 11, 9, 23, 21, 3, 1, 15, 13)
}

func TestCreation(t *testing.T) {
	full := nef.Full([]int{2, 3}, math.NaN(), nef.Float64)
	v, err := full.Float64s()
	if err != nil || len(v) != 6 || !math.IsNaN(v[0]) || !math.IsNaN(v[5]) {
		t.Errorf("full NaN = %v, %v", v, err)
	}
	if v := must(t, nef.Full([]int{2}, math.Inf(-1), nef.Float32)); !math.IsInf(v[0], -1) {
		t.Errorf("full -inf = %v", v)
	}
	if v, err := nef.Ones([]int{3}, nef.Bool).Bools(); err != nil || !v[0] || !v[2] {
		t.Errorf("ones bool = %v, %v", v, err)
	}
	if v, err := nef.Zeros([]int{2, 2}, nef.Int64).Int64s(); err != nil || !equalInts(v, []int64{0, 0, 0, 0}) {
		t.Errorf("zeros int64 = %v, %v", v, err)
	}
	s := nef.Scalar(2.5, nef.Float32)
	expectShape(t, s)
	if x, err := s.Item(); err != nil || x != 2.5 {
		t.Errorf("scalar = %v, %v", x, err)
	}
	expectClose(t, "arange float", must(t, nef.Arange(0.5, 3, 0.5, nef.Float32)), []float64{0.5, 1, 1.5, 2, 2.5}, 0, 0)
	expectClose(t, "arange negative step", must(t, nef.Arange(10, 0, -3, nef.Int64)), []float64{10, 7, 4, 1}, 0, 0)
	expectShape(t, nef.Arange(3, 1, 1, nef.Float32), 0)

	// counter-based random: same seed, same values; within range; right moments
	u1 := must(t, nef.RandomUniform([]int{20000}, 7, -2, 3, nef.Float32))
	u2 := must(t, nef.RandomUniform([]int{20000}, 7, -2, 3, nef.Float32))
	u3 := must(t, nef.RandomUniform([]int{20000}, 8, -2, 3, nef.Float32))
	same, mean := 0, 0.0
	for i := range u1 {
		if u1[i] != u2[i] {
			t.Fatalf("random_uniform with one seed differs at %d", i)
		}
		if u1[i] < -2 || u1[i] >= 3 {
			t.Fatalf("random_uniform value %v outside [-2, 3)", u1[i])
		}
		if u1[i] == u3[i] {
			same++
		}
		mean += u1[i] / float64(len(u1))
	}
	if same > 10 || math.Abs(mean-0.5) > 0.05 {
		t.Errorf("random_uniform: %d equal values across seeds, mean %v (want 0.5)", same, mean)
	}
	nrm := must(t, nef.RandomNormal([]int{20000}, 3, 1, 2, nef.Float64))
	m, sq := 0.0, 0.0
	for _, x := range nrm {
		m += x / float64(len(nrm))
	}
	for _, x := range nrm {
		sq += (x - m) * (x - m) / float64(len(nrm))
	}
	if math.Abs(m-1) > 0.06 || math.Abs(math.Sqrt(sq)-2) > 0.06 {
		t.Errorf("random_normal: mean %v std %v, want 1 and 2", m, math.Sqrt(sq))
	}
}

func TestTensorFromGoData(t *testing.T) {
	r := newRand(t)
	n := 13
	check := func(node *nef.Node, dt nef.DType, shape []int) {
		t.Helper()
		if node.Err() != nil || node.DType() != dt || len(node.Shape()) != len(shape) {
			t.Fatalf("%v: err %v, dtype %v, shape %v", node, node.Err(), node.DType(), node.Shape())
		}
		if !node.IsMaterialized() || node.Op() != "input" {
			t.Errorf("%v: data is materialized and made by 'input'", node)
		}
	}
	f32s := f32(randFloats(r, n, -10, 10))
	nd := nef.Tensor(f32s, nil)
	check(nd, nef.Float32, []int{n})
	if got, err := nd.Float32s(); err != nil || !equalSlices(got, f32s) {
		t.Errorf("float32 round trip: %v, %v", got, err)
	}
	f64s := randFloats(r, n, -10, 10)
	if got, err := nef.Tensor(f64s, nil).Float64s(); err != nil || !equalSlices(got, f64s) {
		t.Errorf("float64 round trip: %v", err)
	}
	i8 := make([]int8, n)
	u8 := make([]uint8, n)
	i32 := make([]int32, n)
	i64 := make([]int64, n)
	bs := make([]bool, n)
	goInts := make([]int, n)
	for i := 0; i < n; i++ {
		i8[i], u8[i], i32[i], i64[i] = int8(r.Intn(256)-128), uint8(r.Intn(256)), r.Int31()-1<<30, r.Int63()-1<<62
		bs[i], goInts[i] = r.Intn(2) == 1, r.Int()-1<<61
	}
	if got, err := nef.Tensor(i8, []int{1, n}).Int8s(); err != nil || !equalSlices(got, i8) {
		t.Errorf("int8 round trip: %v", err)
	}
	if got, err := nef.Tensor(u8, []int{n, 1}).Uint8s(); err != nil || !equalSlices(got, u8) {
		t.Errorf("uint8 round trip: %v", err)
	}
	if got, err := nef.Tensor(i32, nil).Int32s(); err != nil || !equalSlices(got, i32) {
		t.Errorf("int32 round trip: %v", err)
	}
	if got, err := nef.Tensor(i64, nil).Int64s(); err != nil || !equalSlices(got, i64) {
		t.Errorf("int64 round trip: %v", err)
	}
	if got, err := nef.Tensor(bs, nil).Bools(); err != nil || !equalSlices(got, bs) {
		t.Errorf("bool round trip: %v", err)
	}
	i16, u16, u32, u64 := make([]int16, n), make([]uint16, n), make([]uint32, n), make([]uint64, n)
	for i := 0; i < n; i++ {
		i16[i], u16[i] = int16(r.Intn(65536)-32768), uint16(r.Intn(65536))
		u32[i], u64[i] = r.Uint32(), r.Uint64()
	}
	if got, err := nef.Tensor(i16, nil).Int16s(); err != nil || !equalSlices(got, i16) {
		t.Errorf("int16 round trip: %v", err)
	}
	if got, err := nef.Tensor(u16, nil).Uint16s(); err != nil || !equalSlices(got, u16) {
		t.Errorf("uint16 round trip: %v", err)
	}
	if got, err := nef.Tensor(u32, nil).Uint32s(); err != nil || !equalSlices(got, u32) {
		t.Errorf("uint32 round trip: %v", err)
	}
	if got, err := nef.Tensor(u64, nil).Uint64s(); err != nil || !equalSlices(got, u64) {
		t.Errorf("uint64 round trip: %v", err)
	}
	gi := nef.Tensor(goInts, nil)
	check(gi, nef.Int64, []int{n})
	if got, _ := gi.Int64s(); got[3] != int64(goInts[3]) {
		t.Errorf("[]int is int64: %v vs %v", got[3], goInts[3])
	}
	// scalars
	for _, c := range []struct {
		v    any
		dt   nef.DType
		want float64
	}{{float32(1.5), nef.Float32, 1.5}, {2.25, nef.Float64, 2.25}, {7, nef.Int64, 7}, {int8(-3), nef.Int8, -3},
		{uint8(200), nef.Uint8, 200}, {int32(-9), nef.Int32, -9}, {true, nef.Bool, 1},
		{nef.F16FromFloat32(0.5), nef.Float16, 0.5}, {nef.BF16FromFloat32(-4), nef.BFloat16, -4}} {
		s := nef.Tensor(c.v, nil)
		check(s, c.dt, nil)
		if x, err := s.Item(); err != nil || x != c.want {
			t.Errorf("scalar %T = %v, %v", c.v, x, err)
		}
	}
	// empty tensors go through ops
	e := nef.Tensor([]float32{}, []int{0, 3})
	expectShape(t, e, 0, 3)
	if v, err := nef.Exp(nef.Add(e, e)).Float32s(); err != nil || len(v) != 0 {
		t.Errorf("ops on an empty tensor: %v, %v", v, err)
	}
	expectClose(t, "sum over an empty axis", must(t, nef.Sum(e, 0)), []float64{0, 0, 0}, 0, 0)
	if a := nef.Exp(e).Numpy(); a == nil || a.String() != "[]" || len(a.Shape) != 2 {
		t.Errorf("empty Numpy: %v", a)
	}
	// every dtype's accessor refuses the others (AsFloat64s converts any)
	for _, dt := range nef.DTypes() {
		node := nef.Cast(nef.Tensor([]float32{1, 0, 2}, nil), dt)
		a, err := node.Value()
		if err != nil || a.DType != dt || a.Len() != 3 || dt.Size() == 0 {
			t.Fatalf("cast to %v: %v, %v", dt, a, err)
		}
		want := []float64{1, 0, 2}
		if dt == nef.Bool {
			want = []float64{1, 0, 1}
		}
		expectClose(t, "AsFloat64s "+dt.String(), must(t, node), want, 0, 0)
		errs := 0
		for _, get := range []func() error{
			func() error { _, err := node.Float32s(); return err },
			func() error { _, err := node.Float64s(); return err },
			func() error { _, err := node.Float16s(); return err },
			func() error { _, err := node.BFloat16s(); return err },
			func() error { _, err := node.Int8s(); return err },
			func() error { _, err := node.Uint8s(); return err },
			func() error { _, err := node.Int32s(); return err },
			func() error { _, err := node.Int64s(); return err },
			func() error { _, err := node.Bools(); return err },
			func() error { _, err := node.Int16s(); return err },
			func() error { _, err := node.Uint16s(); return err },
			func() error { _, err := node.Uint32s(); return err },
			func() error { _, err := node.Uint64s(); return err },
		} {
			if err := get(); err != nil {
				errs++
				var te *nef.TypeError
				if !errors.As(err, &te) {
					t.Errorf("accessor error %v is not a *TypeError", err)
				}
			}
		}
		if errs != len(nef.DTypes())-1 {
			t.Errorf("%v: %d accessors refused, want all but one", dt, errs)
		}
		if p, err := nef.ParseDType(dt.String()); err != nil || p != dt {
			t.Errorf("ParseDType(%q) = %v, %v", dt.String(), p, err)
		}
	}
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The Go half-precision conversions agree with NEF's casts, bit for bit, on every float16 and
// bfloat16 value and on float32 values around every rounding boundary.
func TestHalfPrecisionMatchesNEF(t *testing.T) {
	r := newRand(t)
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	h := make([]nef.F16, len(all))
	bh := make([]nef.BF16, len(all))
	for i, v := range all {
		h[i], bh[i] = nef.F16(v), nef.BF16(v)
	}
	for name, node := range map[string]*nef.Node{"float16": nef.Tensor(h, nil), "bfloat16": nef.Tensor(bh, nil)} {
		got, err := nef.Cast(node, nef.Float32).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, g := range got {
			var want float32
			if name == "float16" {
				want = h[i].Float32()
			} else {
				want = bh[i].Float32()
			}
			if math.Float32bits(g) != math.Float32bits(want) && !(g != g && want != want) {
				if bad++; bad < 5 {
					t.Errorf("%s %#04x: NEF %v, Go %v", name, i, g, want)
				}
			}
		}
	}
	// float32 -> half: specials, boundaries (halfway points between neighbours), random values
	var xs []float32
	for _, v := range []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 65504, 65519.99,
		65520, 1e6, -1e6, math.Ldexp(1, -24), math.Ldexp(1, -25), math.Ldexp(3, -26), math.Ldexp(1, -26),
		math.Ldexp(1, -14), math.Ldexp(1023, -24), 1e-30, 3.4e38, 1.0009765625, 1.00048828125, 1.00146484375} {
		xs = append(xs, float32(v), -float32(v))
	}
	for i := 0; i < 4000; i++ {
		k := r.Intn(0x7bff) // a finite positive half and its successor
		b, next := nef.F16(k).Float32(), nef.F16(k+1).Float32()
		mid := (b + next) / 2 // exact in float32: the tie between two halves
		xs = append(xs, b, mid, -mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, next),
			float32(r.NormFloat64()*math.Pow(10, float64(r.Intn(12)-8))))
		bb := bh[r.Intn(len(bh))].Float32()
		xs = append(xs, bb, math.Float32frombits(math.Float32bits(bb)|0x8000), math.Float32frombits(math.Float32bits(bb)|0x7fff))
	}
	x := nef.Tensor(xs, nil)
	got16, err := nef.Cast(x, nef.Float16).Float16s()
	if err != nil {
		t.Fatal(err)
	}
	gotb, err := nef.Cast(x, nef.BFloat16).BFloat16s()
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, v := range xs {
		w16, wb := nef.F16FromFloat32(v), nef.BF16FromFloat32(v)
		nan16 := got16[i].Float32() != got16[i].Float32() && w16.Float32() != w16.Float32()
		nanb := gotb[i].Float32() != gotb[i].Float32() && wb.Float32() != wb.Float32()
		if (got16[i] != w16 && !nan16) || (gotb[i] != wb && !nanb) {
			if bad++; bad < 8 {
				t.Errorf("%v (%#08x): NEF f16 %#04x bf16 %#04x, Go f16 %#04x bf16 %#04x", v, math.Float32bits(v),
					got16[i], gotb[i], w16, wb)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d conversions differ", bad, len(xs))
	}
}

// Nothing runs until a value is needed, and a computed value is kept.
func TestLazinessAndStats(t *testing.T) {
	if err := nef.ResetStats(); err != nil {
		t.Fatal(err)
	}
	a := nef.Tensor([]float32{1, 2, 3, 4}, []int{2, 2})
	d := nef.Softmax(nef.MatMul(a, a), -1)
	st, err := nef.Stats()
	if err != nil || st["graphs_executed"] != 0 {
		t.Fatalf("stats before executing: %v, %v", st, err)
	}
	if d.IsMaterialized() {
		t.Error("a new op is not materialized")
	}
	_ = d.Numpy()
	_ = d.Numpy()
	if err := d.Execute(); err != nil {
		t.Fatal(err)
	}
	st, _ = nef.Stats()
	if st["graphs_executed"] != 1 || !d.IsMaterialized() {
		t.Errorf("graphs_executed %d after reading twice (want 1); materialized %v", st["graphs_executed"], d.IsMaterialized())
	}
	for _, k := range []string{"nodes_executed", "kernel_cache_hits", "kernel_cache_misses", "plan_cache_hits",
		"plan_cache_misses", "bytes_allocated", "embedded_plans_used"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats lack %q: %v", k, st)
		}
	}
	// Evaluate: the shared part runs once, in one graph, and both keep their values
	nef.ResetStats()
	h := nef.Exp(nef.MatMul(a, a))
	e1, e2 := nef.Sum(h), nef.Max(h)
	if err := nef.Evaluate(e1, e2); err != nil {
		t.Fatal(err)
	}
	st, _ = nef.Stats()
	if st["graphs_executed"] != 1 || !e1.IsMaterialized() || !e2.IsMaterialized() {
		t.Errorf("Evaluate ran %d graphs", st["graphs_executed"])
	}
	hv := must(t, h)
	var sum, mx float64
	for _, v := range hv {
		sum += v
		mx = math.Max(mx, v)
	}
	expectClose(t, "evaluated sum", must(t, e1), []float64{sum}, 1e-6, 0)
	expectClose(t, "evaluated max", must(t, e2), []float64{mx}, 1e-7, 0)
	// the same code on new values hits the plan cache
	nef.ResetStats()
	for i := 0; i < 3; i++ {
		b := nef.Tensor(f32(randFloats(rand.New(rand.NewSource(int64(i))), 4, 0, 1)), []int{2, 2})
		if err := nef.Softmax(nef.MatMul(b, b), -1).Execute(); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = nef.Stats()
	if st["plan_cache_hits"] < 2 {
		t.Errorf("plan cache hits %d after the same graph three times: %v", st["plan_cache_hits"], st)
	}
}

func TestRuntimeSettings(t *testing.T) {
	if nef.Version() == "" {
		t.Error("no version")
	}
	r, err := nef.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Devices) == 0 || r.Devices[0].Name != "cpu" || !r.Devices[0].Enabled || r.CPU.LogicalCores < 1 {
		t.Errorf("device report: %+v", r)
	}
	if r.Memory.TotalBytes <= 0 || len(r.Enabled) == 0 || r.NEFVersion != nef.Version() {
		t.Errorf("device report: %+v", r)
	}
	if err := nef.SetDevices("cpu"); err != nil {
		t.Fatal(err)
	}
	r, _ = nef.Devices()
	if !equalSlices(r.Enabled, []string{"cpu"}) {
		t.Errorf("enabled after SetDevices(cpu): %v", r.Enabled)
	}
	if err := nef.SetDevices(); err != nil {
		t.Fatal(err)
	}
	if err := nef.SetThreads(1); err != nil || nef.Threads() != 1 {
		t.Errorf("SetThreads(1): %v, %d", err, nef.Threads())
	}
	x := nef.Tensor(randFloats(newRand(t), 1000, 0, 1), []int{10, 100})
	one := must(t, nef.Sum(nef.MatMul(x, nef.Transpose(x)), 1))
	if err := nef.SetThreads(0); err != nil || nef.Threads() < 1 {
		t.Errorf("SetThreads(0): %v, %d", err, nef.Threads())
	}
	x2 := nef.Tensor(must(t, x), []int{10, 100})
	all := must(t, nef.Sum(nef.MatMul(x2, nef.Transpose(x2)), 1))
	expectClose(t, "1 thread vs all", one, all, 1e-12, 0)
}
