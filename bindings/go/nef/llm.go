package nef

// #include "gonef.h"
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// LLM is a loaded GGUF language model of the Llama family (docs/llm.md): weights mapped from
// the file, the tokenizer and chat template from its metadata. Generate may be called from any
// number of goroutines at once; each generation has its own KV cache. Close releases the model
// (a finalizer does if Close is never called); generations in flight finish first.
type LLM struct {
	mu sync.RWMutex // Generate holds it for reading, Close for writing
	h  *C.nef_llm
}

// LoadLLM reads a .gguf model. context is the KV-cache capacity in tokens (0: the model's
// trained context, at most 4096). A malformed file is a *FormatError, an architecture or tensor
// type NEF does not run an *UnsupportedError.
func LoadLLM(path string, context int) (*LLM, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var h *C.nef_llm
	if err := call(func() C.nef_status { return C.nef_llm_load(cpath, C.int64_t(context), &h) }); err != nil {
		return nil, err
	}
	m := &LLM{h: h}
	runtime.SetFinalizer(m, (*LLM).Close)
	return m, nil
}

// Close releases the model. Using it afterwards is an *InvalidArgumentError; closing twice is
// harmless.
func (m *LLM) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	h := m.h
	m.h = nil
	m.mu.Unlock()
	if h != nil {
		C.nef_llm_free(h)
	}
	return nil
}

// GenerateOptions are a generation's sampling and stopping rules. Start from
// DefaultGenerateOptions: its zero value is not the default (TopP 0 is out of range).
type GenerateOptions struct {
	MaxTokens     int     // tokens to generate at most (default 256)
	Temperature   float64 // 0: greedy (the default)
	TopK          int     // keep the K most likely tokens (default 40; 0: all)
	TopP          float64 // nucleus sampling (default 0.95)
	MinP          float64 // drop tokens below MinP times the best one's probability (default 0.05)
	RepeatPenalty float64 // 1: off (the default)
	Seed          uint64  // the sampler's seed: equal seeds give equal samples
	Chat          bool    // the prompt is a user message, rendered with the model's chat template
	IgnoreEOS     bool    // go on past end-of-generation tokens
	Stop          []string
}

// DefaultGenerateOptions are the C API's defaults (nef_generate_options_init).
func DefaultGenerateOptions() GenerateOptions {
	var o C.nef_generate_options
	C.nef_generate_options_init(&o)
	return GenerateOptions{
		MaxTokens: int(o.max_tokens), Temperature: float64(o.temperature), TopK: int(o.top_k),
		TopP: float64(o.top_p), MinP: float64(o.min_p), RepeatPenalty: float64(o.repeat_penalty),
		Seed: uint64(o.seed),
	}
}

// GenerateStats describe a finished generation.
type GenerateStats struct {
	PromptTokens    int
	GeneratedTokens int
	PromptTime      time.Duration // prompt evaluation, up to the first token (time to first token)
	DecodeTime      time.Duration // the generated tokens after the first
	// Why it ended: "eos", "stop_string", "max_tokens", "context", or "callback" when onPiece
	// returned an error or the context ended.
	StopReason string
}

// DecodeTokensPerSecond is the decode speed: the tokens after the first over DecodeTime (0 when
// fewer than two tokens were generated).
func (s GenerateStats) DecodeTokensPerSecond() float64 {
	if s.GeneratedTokens < 2 || s.DecodeTime <= 0 {
		return 0
	}
	return float64(s.GeneratedTokens-1) / s.DecodeTime.Seconds()
}

// pieceSink carries one generation's callback through C: the cgo.Handle of it is the user
// pointer nef_llm_generate hands back to gonefPiece.
type pieceSink struct {
	ctx      context.Context
	onPiece  func(string) error
	err      error // the callback's error or the context's
	panicked bool
	panicVal interface{}
}

// deliver passes one piece on; nonzero stops the generation. A panic in the callback is caught
// here and re-raised once C has returned: unwinding through C++ frames would skip their cleanup.
func (s *pieceSink) deliver(piece string) (stop C.int) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked, s.panicVal, stop = true, r, 1
		}
	}()
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 1
	}
	if err := s.onPiece(piece); err != nil {
		s.err = err
		return 1
	}
	return 0
}

// Generate streams the model's continuation of prompt: onPiece gets the text of each generated
// token as it is produced, on the calling goroutine (possibly "" while a UTF-8 character or a
// possible stop string is incomplete). opts nil means DefaultGenerateOptions. An error from
// onPiece, or ctx ending (checked before each piece; the prompt's evaluation itself is not
// interrupted), stops the generation and is returned with the stats so far. Bad options are a
// *ValidationError, a chat prompt for a model without a chat template an *UnsupportedError.
func (m *LLM) Generate(ctx context.Context, prompt string, opts *GenerateOptions, onPiece func(piece string) error) (GenerateStats, error) {
	if m == nil {
		return GenerateStats{}, errorf(CodeInvalidArgument, "[generate] the model is nil")
	}
	if onPiece == nil {
		return GenerateStats{}, errorf(CodeInvalidArgument, "[generate] onPiece is nil")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	o := DefaultGenerateOptions()
	if opts != nil {
		o = *opts
	}
	var co C.nef_generate_options
	C.nef_generate_options_init(&co)
	co.max_tokens = C.int64_t(o.MaxTokens)
	co.temperature = C.double(o.Temperature)
	co.top_k = C.int64_t(o.TopK)
	co.top_p = C.double(o.TopP)
	co.min_p = C.double(o.MinP)
	co.repeat_penalty = C.double(o.RepeatPenalty)
	co.seed = C.uint64_t(o.Seed)
	if o.Chat {
		co.chat = 1
	}
	if o.IgnoreEOS {
		co.ignore_eos = 1
	}
	// The stop strings and their array live in C memory: a Go struct passed to C must not point
	// at Go memory that holds pointers.
	if n := len(o.Stop); n > 0 {
		arr := (*[1 << 20]*C.char)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:n:n]
		for i, s := range o.Stop {
			arr[i] = C.CString(s)
		}
		defer func() {
			for _, p := range arr {
				C.free(unsafe.Pointer(p))
			}
			C.free(unsafe.Pointer(&arr[0]))
		}()
		co.stop = &arr[0]
		co.n_stop = C.int64_t(n)
	}
	cprompt := C.CString(prompt)
	defer C.free(unsafe.Pointer(cprompt))

	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.h == nil {
		return GenerateStats{}, errorf(CodeInvalidArgument, "[generate] the model is closed")
	}
	sink := &pieceSink{ctx: ctx, onPiece: onPiece}
	handle := cgo.NewHandle(sink)
	defer handle.Delete()
	var st C.nef_generate_stats
	err := call(func() C.nef_status {
		return C.gonef_llm_generate(m.h, cprompt, &co, C.uintptr_t(handle), &st)
	})
	if sink.panicked {
		panic(sink.panicVal)
	}
	stats := GenerateStats{
		PromptTokens:    int(st.prompt_tokens),
		GeneratedTokens: int(st.generated_tokens),
		PromptTime:      time.Duration(float64(st.prompt_seconds) * float64(time.Second)),
		DecodeTime:      time.Duration(float64(st.decode_seconds) * float64(time.Second)),
		StopReason:      C.GoString(&st.stop_reason[0]),
	}
	if err != nil {
		return stats, err
	}
	return stats, sink.err
}
