package nef

import "math"

// DType is an element type; the values are nef_dtype's in nef.h.
type DType int

// NEF's dtypes. Go types for each: float32, F16, BF16, float64, int8, uint8, int32, int64, bool,
// int16, uint16, uint32, uint64.
const (
	Float32  DType = 0
	Float16  DType = 1
	BFloat16 DType = 2
	Float64  DType = 3
	Int8     DType = 4
	Uint8    DType = 5
	Int32    DType = 6
	Int64    DType = 7
	Bool     DType = 8
	Int16    DType = 9
	Uint16   DType = 10
	Uint32   DType = 11
	Uint64   DType = 12
)

// invalidDType is what DType returns for a node that failed.
const invalidDType DType = -1

var dtypeNames = [...]string{"float32", "float16", "bfloat16", "float64", "int8", "uint8",
	"int32", "int64", "bool", "int16", "uint16", "uint32", "uint64"}
var dtypeSizes = [...]int{4, 2, 2, 8, 1, 1, 4, 8, 1, 2, 2, 4, 8}

// DTypes lists every dtype in code order.
func DTypes() []DType {
	return []DType{Float32, Float16, BFloat16, Float64, Int8, Uint8, Int32, Int64, Bool, Int16, Uint16,
		Uint32, Uint64}
}

// String is NEF's name for the dtype ("float32"), "invalid" for a value that is none.
func (d DType) String() string {
	if d.valid() {
		return dtypeNames[d]
	}
	return "invalid"
}

// Size is the size of one element in bytes (0 for an invalid dtype).
func (d DType) Size() int {
	if d.valid() {
		return dtypeSizes[d]
	}
	return 0
}

// IsFloat reports whether d is one of the four float types.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float16 || d == BFloat16 || d == Float64
}

func (d DType) valid() bool { return d >= 0 && int(d) < len(dtypeNames) }

// ParseDType returns the dtype with NEF's name ("float32", "int64", ...); a *TypeError if none.
func ParseDType(name string) (DType, error) {
	for i, n := range dtypeNames {
		if n == name {
			return DType(i), nil
		}
	}
	return invalidDType, errorf(CodeType, "unknown dtype '%s'", name)
}

// F16 is an IEEE 754 half-precision value (NEF's float16) held as its bits.
type F16 uint16

// BF16 is a bfloat16 value (the upper half of a float32) held as its bits.
type BF16 uint16

// F16FromFloat32 rounds f to the nearest float16 (ties to even), as NEF's casts do: values
// beyond the range become infinities, tiny ones subnormals or zero, NaN stays NaN.
func F16FromFloat32(f float32) F16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return F16(sign | 0x7e00 | uint16(mant>>13)) // quiet NaN, payload kept
		}
		return F16(sign | 0x7c00)
	}
	e := exp - 127 + 15 // the half-precision biased exponent
	if e >= 0x1f {
		return F16(sign | 0x7c00)
	}
	if e <= 0 { // a subnormal half, in units of 2^-24; rounding may carry into the normals
		if exp == 0 {
			return F16(sign) // float32 subnormals are far below half's smallest subnormal
		}
		full := mant | 0x800000
		shift := uint(14 - e) // 14 for the largest subnormals, 24 at 2^-25
		if shift > 24 {
			return F16(sign)
		}
		m := full >> shift
		rem := full & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && m&1 == 1) {
			m++
		}
		return F16(sign | uint16(m))
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent: the next binade, or infinity
	}
	return F16(sign | uint16(h))
}

// Float32 is the exact float32 value of h.
func (h F16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		f := float32(mant) / (1 << 24) // exact: mant < 2^10
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// BF16FromFloat32 rounds f to the nearest bfloat16 (ties to even); NaN stays NaN.
func BF16FromFloat32(f float32) BF16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return BF16(b>>16 | 0x40) // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return BF16(b >> 16)
}

// Float32 is the exact float32 value of h.
func (h BF16) Float32() float32 { return math.Float32frombits(uint32(h) << 16) }
