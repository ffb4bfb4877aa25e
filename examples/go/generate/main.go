// generate: streams a GGUF language model's answer to stdout, token by token, and prints the time
// to first token and the decode speed to stderr (Go's counterpart of `nef generate`).
//
//	cd examples/go && go run ./generate -model SmolLM2-135M-Instruct.Q4_1.gguf -chat \
//	    -prompt "What is the capital of France?"
//
// Ctrl-C stops the generation between two tokens.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"

	"github.com/Hexa08/NEF/bindings/go/nef"
)

type stops []string

func (s *stops) String() string     { return strings.Join(*s, ",") }
func (s *stops) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	o := nef.DefaultGenerateOptions()
	model := flag.String("model", "", "path of a .gguf model (Llama family)")
	prompt := flag.String("prompt", "The capital of France is", "the prompt")
	context_ := flag.Int("context", 0, "KV-cache capacity in tokens (0: the model's, at most 4096)")
	flag.IntVar(&o.MaxTokens, "max-tokens", 128, "tokens to generate at most")
	flag.Float64Var(&o.Temperature, "temperature", o.Temperature, "0: greedy")
	flag.IntVar(&o.TopK, "top-k", o.TopK, "keep the K most likely tokens (0: all)")
	flag.Float64Var(&o.TopP, "top-p", o.TopP, "nucleus sampling")
	flag.Float64Var(&o.MinP, "min-p", o.MinP, "drop tokens below this share of the best one")
	flag.Uint64Var(&o.Seed, "seed", o.Seed, "sampling seed")
	flag.BoolVar(&o.Chat, "chat", false, "the prompt is a user message in the model's chat template")
	var stop stops
	flag.Var(&stop, "stop", "a stop string (repeatable)")
	flag.Parse()
	if *model == "" {
		flag.Usage()
		os.Exit(2)
	}
	o.Stop = stop

	m, err := nef.LoadLLM(*model, *context_)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if !o.Chat {
		fmt.Print(*prompt)
	}
	st, err := m.Generate(ctx, *prompt, &o, func(piece string) error {
		_, err := os.Stdout.WriteString(piece)
		return err
	})
	fmt.Println()
	if err != nil && err != context.Canceled {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "prompt %d tokens, time to first token %.3f s; generated %d tokens, %.1f tokens/s; stop: %s\n",
		st.PromptTokens, st.PromptTime.Seconds(), st.GeneratedTokens, st.DecodeTokensPerSecond(), st.StopReason)
}
