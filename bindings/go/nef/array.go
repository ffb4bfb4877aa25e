package nef

import (
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// Array is a value copied out of NEF: row-major data, its shape and dtype. Data is a slice of
// the dtype's Go type: []float32, []F16, []BF16, []float64, []int8, []uint8, []int32, []int64
// or []bool. String prints it as numpy's str does.
type Array struct {
	Shape []int
	DType DType
	Data  any
}

// Len is the number of elements.
func (a *Array) Len() int { return dataLen(a.Data) }

// Float64s returns the elements converted to float64 (bools are 0 and 1).
func (a *Array) Float64s() []float64 {
	n := a.Len()
	out := make([]float64, n)
	for i := range out {
		out[i] = a.at(i)
	}
	return out
}

// at is element i as a float64.
func (a *Array) at(i int) float64 {
	switch d := a.Data.(type) {
	case []float32:
		return float64(d[i])
	case []float64:
		return d[i]
	case []F16:
		return float64(d[i].Float32())
	case []BF16:
		return float64(d[i].Float32())
	case []int8:
		return float64(d[i])
	case []uint8:
		return float64(d[i])
	case []int32:
		return float64(d[i])
	case []int64:
		return float64(d[i])
	case []int16:
		return float64(d[i])
	case []uint16:
		return float64(d[i])
	case []uint32:
		return float64(d[i])
	case []uint64:
		return float64(d[i])
	case []bool:
		if d[i] {
			return 1
		}
		return 0
	}
	panic("nef: Array.Data has an unsupported type")
}

// makeData allocates n elements of dtype dt, with the pointer and byte size the C API writes to.
func makeData(dt DType, n int) (any, unsafe.Pointer, int) {
	var data any
	switch dt {
	case Float32:
		data = make([]float32, n)
	case Float64:
		data = make([]float64, n)
	case Float16:
		data = make([]F16, n)
	case BFloat16:
		data = make([]BF16, n)
	case Int8:
		data = make([]int8, n)
	case Uint8:
		data = make([]uint8, n)
	case Int32:
		data = make([]int32, n)
	case Int64:
		data = make([]int64, n)
	case Int16:
		data = make([]int16, n)
	case Uint16:
		data = make([]uint16, n)
	case Uint32:
		data = make([]uint32, n)
	case Uint64:
		data = make([]uint64, n)
	case Bool:
		data = make([]bool, n)
	default:
		panic("nef: invalid dtype " + dt.String())
	}
	_, _, ptr, _ := describeData(data)
	return data, ptr, n * dt.Size()
}

// describeData gives a supported slice's dtype, length and first element (nil if empty).
func describeData(data any) (DType, int, unsafe.Pointer, bool) {
	switch d := data.(type) {
	case []float32:
		return Float32, len(d), first(d), true
	case []float64:
		return Float64, len(d), first(d), true
	case []F16:
		return Float16, len(d), first(d), true
	case []BF16:
		return BFloat16, len(d), first(d), true
	case []int8:
		return Int8, len(d), first(d), true
	case []uint8:
		return Uint8, len(d), first(d), true
	case []int32:
		return Int32, len(d), first(d), true
	case []int64:
		return Int64, len(d), first(d), true
	case []int16:
		return Int16, len(d), first(d), true
	case []uint16:
		return Uint16, len(d), first(d), true
	case []uint32:
		return Uint32, len(d), first(d), true
	case []uint64:
		return Uint64, len(d), first(d), true
	case []bool:
		return Bool, len(d), first(d), true
	}
	return invalidDType, 0, nil, false
}

func first[T any](s []T) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}

func dataLen(data any) int {
	_, n, _, ok := describeData(data)
	if !ok {
		return 0
	}
	return n
}

// sliceOf makes a one-element slice of a supported scalar.
func sliceOf(v any) any {
	switch x := v.(type) {
	case float32:
		return []float32{x}
	case float64:
		return []float64{x}
	case F16:
		return []F16{x}
	case BF16:
		return []BF16{x}
	case int8:
		return []int8{x}
	case uint8:
		return []uint8{x}
	case int32:
		return []int32{x}
	case int64:
		return []int64{x}
	case int16:
		return []int16{x}
	case uint16:
		return []uint16{x}
	case uint32:
		return []uint32{x}
	case uint64:
		return []uint64{x}
	case bool:
		return []bool{x}
	}
	return v
}

// ---- printing as numpy's str(array) ---------------------------------------------------------
// numpy's defaults: line width 75, arrays over 1000 elements summarized to 3 items at each edge,
// floats with at most 8 fractional digits (the shortest that round-trips), scientific when the
// nonzero magnitudes span more than 1e3 or reach 1e8 or go below 1e-4.

const (
	printLineWidth = 75
	printThreshold = 1000
	printEdgeItems = 3
)

// String formats the array as numpy's str() does: [[19. 22.]\n [43. 50.]].
func (a *Array) String() string {
	if a == nil {
		return "<nil>"
	}
	n := a.Len()
	if n == 0 {
		return "[]"
	}
	if len(a.Shape) == 0 {
		return a.scalarString()
	}
	p := printer{a: a, summarize: n > printThreshold, strides: make([]int, len(a.Shape))}
	stride := 1
	for i := len(a.Shape) - 1; i >= 0; i-- {
		p.strides[i] = stride
		stride *= a.Shape[i]
	}
	shown := p.shownIndices(0, 0, nil)
	switch a.Data.(type) {
	case []bool:
		p.format = func(i int) string {
			if a.Data.([]bool)[i] {
				return " True"
			}
			return "False"
		}
	case []int8, []uint8, []int32, []int64, []int16, []uint16, []uint32, []uint64:
		width := 0
		for _, i := range shown {
			width = max(width, len(a.intString(i)))
		}
		p.format = func(i int) string {
			s := a.intString(i)
			return strings.Repeat(" ", width-len(s)) + s
		}
	default:
		f := newFloatFormat(a, shown)
		p.format = f.format
	}
	return p.rec(0, 0, " ", printLineWidth)
}

func (a *Array) intString(i int) string {
	switch d := a.Data.(type) {
	case []int8:
		return strconv.FormatInt(int64(d[i]), 10)
	case []uint8:
		return strconv.FormatUint(uint64(d[i]), 10)
	case []int32:
		return strconv.FormatInt(int64(d[i]), 10)
	case []int64:
		return strconv.FormatInt(d[i], 10)
	case []int16:
		return strconv.FormatInt(int64(d[i]), 10)
	case []uint16:
		return strconv.FormatUint(uint64(d[i]), 10)
	case []uint32:
		return strconv.FormatUint(uint64(d[i]), 10)
	case []uint64:
		return strconv.FormatUint(d[i], 10)
	}
	return ""
}

// scalarString is numpy's str of a 0-d array: the scalar's own repr ("19.0", "1e+20", "True").
func (a *Array) scalarString() string {
	switch d := a.Data.(type) {
	case []bool:
		if d[0] {
			return "True"
		}
		return "False"
	case []int8, []uint8, []int32, []int64, []int16, []uint16, []uint32, []uint64:
		return a.intString(0)
	}
	x := a.at(0)
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	if ax := math.Abs(x); x == 0 || (ax >= 1e-4 && ax < 1e16) {
		s := shortest(x, a.DType, 'f')
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	return shortest(x, a.DType, 'e')
}

type printer struct {
	a         *Array
	strides   []int
	summarize bool
	format    func(flat int) string
}

// shownIndices lists the flat indices that are printed (all, or the edges when summarizing).
func (p *printer) shownIndices(axis, offset int, out []int) []int {
	if axis == len(p.a.Shape) {
		return append(out, offset)
	}
	n := p.a.Shape[axis]
	for i := 0; i < n; i++ {
		if p.summarize && 2*printEdgeItems < n && i == printEdgeItems {
			i = n - printEdgeItems
		}
		out = p.shownIndices(axis+1, offset+i*p.strides[axis], out)
	}
	return out
}

// rec is numpy's _formatArray recursion (arrayprint.py), with its wrapping rules.
func (p *printer) rec(axis, offset int, hanging string, width int) string {
	if axis == len(p.a.Shape) {
		return p.format(offset)
	}
	nextHanging := hanging + " "
	nextWidth := width - 1
	n := p.a.Shape[axis]
	stride := p.strides[axis]
	summary := p.summarize && 2*printEdgeItems < n
	lead, trail := 0, n
	if summary {
		lead, trail = printEdgeItems, printEdgeItems
	}
	var s string
	if len(p.a.Shape)-axis == 1 {
		elemWidth := width - 1 // room for the closing bracket
		line := hanging
		extend := func(word string) {
			if len(line)+len(word) > elemWidth && len(line) > len(hanging) {
				s += strings.TrimRight(line, " ") + "\n"
				line = hanging
			}
			line += word
		}
		for i := 0; i < lead; i++ {
			extend(p.rec(axis+1, offset+i*stride, nextHanging, nextWidth))
			line += " "
		}
		if summary {
			extend("...")
			line += " "
		}
		for i := trail; i > 1; i-- {
			extend(p.rec(axis+1, offset+(n-i)*stride, nextHanging, nextWidth))
			line += " "
		}
		extend(p.rec(axis+1, offset+(n-1)*stride, nextHanging, nextWidth))
		s += line
	} else {
		sep := strings.Repeat("\n", len(p.a.Shape)-axis-1)
		for i := 0; i < lead; i++ {
			s += hanging + p.rec(axis+1, offset+i*stride, nextHanging, nextWidth) + sep
		}
		if summary {
			s += hanging + "..." + sep
		}
		for i := trail; i > 1; i-- {
			s += hanging + p.rec(axis+1, offset+(n-i)*stride, nextHanging, nextWidth) + sep
		}
		s += hanging + p.rec(axis+1, offset+(n-1)*stride, nextHanging, nextWidth)
	}
	return "[" + s[len(hanging):] + "]"
}

// floatFormat is numpy's FloatingFormat in its default mode (maxprec, precision 8).
type floatFormat struct {
	a                 *Array
	exp               bool
	padLeft, padRight int
	precision         int // scientific: fraction digits of every element
	expSize           int // scientific: exponent digits
}

func newFloatFormat(a *Array, shown []int) *floatFormat {
	f := &floatFormat{a: a}
	var finite []float64
	hasNegInf, nonFinite := false, false
	for _, i := range shown {
		x := a.at(i)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			nonFinite = true
			hasNegInf = hasNegInf || math.IsInf(x, -1)
			continue
		}
		finite = append(finite, x)
	}
	minAbs, maxAbs := math.Inf(1), 0.0
	for _, x := range finite {
		if x != 0 {
			minAbs = math.Min(minAbs, math.Abs(x))
			maxAbs = math.Max(maxAbs, math.Abs(x))
		}
	}
	if maxAbs > 0 && (maxAbs >= 1e8 || minAbs < 1e-4 || maxAbs/minAbs > 1e3) {
		f.exp = true
	}
	switch {
	case len(finite) == 0:
	case f.exp:
		for _, x := range finite {
			mant, exp := f.scientific(x)
			ip, fp, _ := strings.Cut(mant, ".")
			f.padLeft = max(f.padLeft, len(ip))
			f.precision = max(f.precision, len(fp))
			f.expSize = max(f.expSize, len(strconv.Itoa(abs(exp))))
		}
		f.expSize = max(f.expSize, 2)
		f.padRight = f.expSize + 2 + f.precision
	default:
		for _, x := range finite {
			ip, fp, _ := strings.Cut(f.positional(x), ".")
			f.padLeft = max(f.padLeft, len(ip))
			f.padRight = max(f.padRight, len(fp))
		}
	}
	if nonFinite {
		neg := 0
		if hasNegInf {
			neg = 1
		}
		offset := f.padRight + 1
		f.padLeft = max(f.padLeft, 3-offset, 3+neg-offset)
	}
	return f
}

// positional: the shortest digits that identify x in its dtype, at most 8 after the point.
func (f *floatFormat) positional(x float64) string {
	s := shortest(x, f.a.DType, 'f')
	if _, fp, ok := strings.Cut(s, "."); ok && len(fp) > 8 {
		s = strings.TrimRight(strconv.FormatFloat(x, 'f', 8, 64), "0")
	}
	if !strings.Contains(s, ".") {
		s += "."
	}
	return s
}

// scientific: the shortest mantissa digits (at most 8 after the point) and the exponent.
func (f *floatFormat) scientific(x float64) (string, int) {
	s := shortest(x, f.a.DType, 'e')
	mant, e, _ := strings.Cut(s, "e")
	if _, fp, ok := strings.Cut(mant, "."); ok && len(fp) > 8 {
		s = strconv.FormatFloat(x, 'e', 8, 64)
		mant, e, _ = strings.Cut(s, "e")
		mant = strings.TrimRight(mant, "0")
	}
	exp, _ := strconv.Atoi(e)
	return mant, exp
}

func (f *floatFormat) format(i int) string {
	x := f.a.at(i)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		s := "nan"
		if math.IsInf(x, 1) {
			s = "inf"
		} else if math.IsInf(x, -1) {
			s = "-inf"
		}
		return strings.Repeat(" ", max(0, f.padLeft+f.padRight+1-len(s))) + s
	}
	if f.exp {
		mant, exp := f.scientific(x)
		if _, fp, _ := strings.Cut(mant, "."); len(fp) != f.precision {
			// more digits of the exact value, as numpy's min_digits prints them
			s := strconv.FormatFloat(x, 'e', f.precision, 64)
			mant, _, _ = strings.Cut(s, "e")
		}
		if !strings.Contains(mant, ".") {
			mant += "."
		}
		ip, fp, _ := strings.Cut(mant, ".")
		sign := "+"
		if exp < 0 {
			sign = "-"
		}
		es := strconv.Itoa(abs(exp))
		es = strings.Repeat("0", max(0, f.expSize-len(es))) + es
		return strings.Repeat(" ", max(0, f.padLeft-len(ip))) + ip + "." + fp + "e" + sign + es
	}
	ip, fp, _ := strings.Cut(f.positional(x), ".")
	return strings.Repeat(" ", max(0, f.padLeft-len(ip))) + ip + "." + fp +
		strings.Repeat(" ", max(0, f.padRight-len(fp)))
}

// shortest formats x with the fewest digits that read back as the same value of dtype dt.
func shortest(x float64, dt DType, mode byte) string {
	switch dt {
	case Float64:
		return strconv.FormatFloat(x, mode, -1, 64)
	case Float32:
		return strconv.FormatFloat(x, mode, -1, 32)
	}
	// float16 and bfloat16: the first precision that rounds back to the same bits.
	same := func(y float64) bool {
		if dt == Float16 {
			return F16FromFloat32(float32(y)) == F16FromFloat32(float32(x))
		}
		return BF16FromFloat32(float32(y)) == BF16FromFloat32(float32(x))
	}
	for p := 0; p < 17; p++ {
		s := strconv.FormatFloat(x, 'e', p, 64)
		y, _ := strconv.ParseFloat(s, 64)
		if same(y) {
			return strconv.FormatFloat(y, mode, -1, 64)
		}
	}
	return strconv.FormatFloat(x, mode, -1, 32)
}

func max(a int, b ...int) int {
	for _, x := range b {
		if x > a {
			a = x
		}
	}
	return a
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
