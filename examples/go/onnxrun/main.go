// onnxrun: imports an ONNX model, binds its symbolic dims, runs it on generated inputs and
// prints the input and output types, the first values of each output and the run time.
//
//	cd examples/go && go run ./onnxrun -model model.onnx -dim batch=1 -dim sequence=16 -repeat 10
//
// Float inputs get normal samples, integer inputs ones (a valid token id or index, an attention
// mask that attends everywhere), bool inputs true. Unbound symbolic dims default to 1.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

type dims map[string]int

func (d dims) String() string { return fmt.Sprint(map[string]int(d)) }
func (d dims) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(value)
	if !ok || err != nil || n < 0 {
		return fmt.Errorf("want name=size, got %q", s)
	}
	d[name] = n
	return nil
}

func input(t nef.InputType, bound dims, r *rand.Rand) *nef.Node {
	shape := make([]int, len(t.Shape))
	n := 1
	for i, d := range t.Shape {
		if d < 0 {
			d = 1
			if v, ok := bound[t.DimNames[i]]; ok {
				d = v
			}
		}
		shape[i] = d
		n *= d
	}
	if t.DType.IsFloat() {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return nef.Cast(nef.Tensor(v, shape), t.DType)
	}
	return nef.Ones(shape, t.DType)
}

func main() {
	model := flag.String("model", "", "the .onnx file")
	repeat := flag.Int("repeat", 5, "timed runs after one warm-up run")
	bound := dims{}
	flag.Var(bound, "dim", "bind a symbolic dim: name=size (repeatable)")
	flag.Parse()
	if *model == "" {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	g, err := nef.FromONNX(*model, bound)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	fmt.Printf("imported in %.2fs\n", time.Since(start).Seconds())
	r := rand.New(rand.NewSource(1))
	inputs := map[string]*nef.Node{}
	for _, t := range g.InputTypes() {
		inputs[t.Name] = input(t, bound, r)
		fmt.Printf("input  %v -> %v\n", t, inputs[t.Name].Shape())
	}
	var out map[string]*nef.Node
	var times []time.Duration
	for i := 0; i <= *repeat; i++ {
		t0 := time.Now()
		if out, err = g.Run(inputs); err != nil {
			log.Fatal(err)
		}
		if i > 0 {
			times = append(times, time.Since(t0))
		}
	}
	for _, name := range g.Outputs() {
		v, err := out[name].AsFloat64s()
		if err != nil {
			log.Fatal(err)
		}
		if len(v) > 6 {
			v = v[:6]
		}
		fmt.Printf("output %s %v %s: %.5g ...\n", name, out[name].Shape(), out[name].DType(), v)
	}
	if len(times) > 0 {
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		fmt.Printf("run: median %v over %d runs\n", times[len(times)/2], len(times))
	}
}
