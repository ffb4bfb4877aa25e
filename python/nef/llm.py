"""Language models (docs/llm.md): GGUF Llama-family models run token by token with a KV cache,
the byte-level BPE tokenizer, streaming decoding, chat templates and stop strings.

    m = nef.llm.load(path)                       # a .gguf file
    for piece in m.generate("The capital of France is", max_tokens=32):
        print(piece, end="", flush=True)
    for piece in m.chat([{"role": "user", "content": "Hi!"}]):
        ...

    tok = nef.llm.Tokenizer(tokens, merges, token_types, bos_id=1, eos_id=2, pre="smollm",
                            chat_template=template)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}])
    ids = tok.encode(prompt, parse_special=True)
    dec = tok.stream_decoder()
    text = "".join(dec.push(i) for i in generated) + dec.flush()
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import _nef
from .errors import NEFTypeError, NEFValidationError

__all__ = ["load", "Model", "Session", "Generation", "Tokenizer", "StreamDecoder", "ChatTemplate",
           "StopStrings", "TOKEN_TYPES"]

StreamDecoder = _nef.StreamDecoder
ChatTemplate = _nef.ChatTemplate
StopStrings = _nef.StopStrings

# GGUF token types (tokenizer.ggml.token_type), by number.
TOKEN_TYPES = {0: "undefined", 1: "normal", 2: "unknown", 3: "control", 4: "user_defined",
               5: "unused", 6: "byte"}


def _ids(ids: Iterable[Any]) -> list[int]:
    try:
        return [operator.index(i) for i in ids]
    except TypeError as e:
        raise NEFTypeError(f"[tokenizer] token ids must be integers: {e}") from None


def _messages(messages: Iterable[Any]) -> list[tuple[str, str]]:
    """Chat messages as {"role", "content"} mappings, objects with those attributes, or
    (role, content) pairs."""
    out = []
    for i, m in enumerate(messages):
        if isinstance(m, Mapping):
            role, content = m.get("role"), m.get("content")
        elif isinstance(m, (tuple, list)) and len(m) == 2:
            role, content = m
        else:
            role, content = getattr(m, "role", None), getattr(m, "content", None)
        if not isinstance(role, str) or not isinstance(content, str):
            raise NEFValidationError(
                f"[chat template] message {i} needs a str 'role' and a str 'content', got {m!r}")
        out.append((role, content))
    return out


class Tokenizer:
    """A byte-level BPE tokenizer (GGUF tokenizer model "gpt2") built from its vocabulary.

    tokens: the vocabulary, id -> text in GPT-2's byte alphabet ("Ġthe"); merges: "left right"
    strings, highest priority first; token_types: GGUF token types per id (None: all normal;
    3 = control tokens such as <|im_start|>, 4 = user-defined tokens); bos_id ... eot_id: special
    ids (-1: none); add_bos/add_eos: what encode(add_special=True) adds; pre: the pre-tokenizer
    type (GGUF tokenizer.ggml.pre: "smollm", "gpt2", "llama-bpe", "qwen2", "default", ...);
    chat_template: the model's Jinja template source (tokenizer.chat_template), rendered natively
    for the families NEF knows (ChatML). Bad data raises NEFValidationError, an unknown model or
    pre-tokenizer NEFUnsupportedError. Thread-safe once built.
    """

    def __init__(self, tokens: Sequence[str], merges: Sequence[str],
                 token_types: Sequence[int] | None = None, bos_id: int = -1, eos_id: int = -1, *,
                 unk_id: int = -1, pad_id: int = -1, eot_id: int = -1, add_bos: bool = False,
                 add_eos: bool = False, pre: str = "default", model: str = "gpt2",
                 chat_template: str | None = None) -> None:
        types = [] if token_types is None else [int(t) for t in token_types]
        self._native = _nef.Tokenizer(list(tokens), list(merges), types, int(bos_id),
                                      int(eos_id), int(unk_id), int(pad_id), int(eot_id),
                                      bool(add_bos), bool(add_eos), str(pre), str(model))
        self._chat_source = chat_template or None
        self._chat: Any = None

    @classmethod
    def _wrap(cls, native: _nef.Tokenizer, chat_template: str | None = None) -> Tokenizer:
        """A Tokenizer around a native one made elsewhere (a model loader)."""
        self = cls.__new__(cls)
        self._native = native
        self._chat_source = chat_template or None
        self._chat = None
        return self

    def encode(self, text: str | bytes, parse_special: bool = False,
               add_special: bool = True) -> list[int]:
        """Text (str, or bytes that need not be UTF-8) -> token ids. parse_special: recognize
        control tokens written in the text (<|im_start|>); add_special: add BOS/EOS as the model
        asks (add_bos/add_eos)."""
        return self._native.encode(text, bool(parse_special), bool(add_special))

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Token ids -> str; bytes that do not form UTF-8 become U+FFFD."""
        return self._native.decode(_ids(ids), bool(skip_special))

    def decode_bytes(self, ids: Iterable[int], skip_special: bool = False) -> bytes:
        """Token ids -> the exact bytes (may end inside a character)."""
        return self._native.decode_bytes(_ids(ids), bool(skip_special))

    def stream_decoder(self, skip_special: bool = False) -> StreamDecoder:
        """A decoder for generated ids one at a time: push(id) returns the text that id
        completes (characters split over tokens are held), flush() the rest."""
        return _nef.StreamDecoder(self._native, bool(skip_special))

    def apply_chat_template(self, messages: Iterable[Any],
                            add_generation_prompt: bool = True) -> str:
        """The prompt text for a conversation: messages as {"role", "content"} dicts (or
        (role, content) pairs). Encode it with parse_special=True. NEFUnsupportedError when the
        model has no chat template or one NEF does not render."""
        if self._chat is None:
            self._chat = _nef.ChatTemplate(self._chat_source or "")
        return self._chat.apply(_messages(messages), bool(add_generation_prompt))

    @property
    def chat_template(self) -> str | None:
        """The chat template's source, or None."""
        return self._chat_source

    def token_text(self, id: int) -> str:  # noqa: A002
        """The vocabulary's text of a token ("Ġthe")."""
        return self._native.token_text(operator.index(id))

    def token_bytes(self, id: int) -> bytes:  # noqa: A002
        """The bytes a token decodes to (b" the")."""
        return self._native.token_bytes(operator.index(id))

    def token_type(self, id: int) -> int:  # noqa: A002
        """The GGUF token type of a token (TOKEN_TYPES names them)."""
        return self._native.token_type(operator.index(id))

    def token_id(self, text: str) -> int | None:
        """The id of the token the vocabulary spells `text`, or None."""
        return self._native.token_id(text)

    def is_special(self, id: int) -> bool:  # noqa: A002
        """Whether a token is a control (or unknown) token."""
        return self._native.is_special(operator.index(id))

    def is_eog(self, id: int) -> bool:  # noqa: A002
        """Whether a token ends generation (EOS, EOT, end-of-turn control tokens)."""
        return self._native.is_eog(operator.index(id))

    @property
    def eog_ids(self) -> list[int]:
        """Every end-of-generation token id."""
        return list(self._native.eog_ids)

    @property
    def vocab_size(self) -> int:
        """The number of tokens."""
        return self._native.vocab_size

    def __len__(self) -> int:
        return self._native.vocab_size

    @property
    def bos_id(self) -> int:
        """Beginning-of-sequence id (-1: none)."""
        return self._native.bos_id

    @property
    def eos_id(self) -> int:
        """End-of-sequence id (-1: none)."""
        return self._native.eos_id

    @property
    def unk_id(self) -> int:
        """Unknown-token id (-1: none)."""
        return self._native.unk_id

    @property
    def pad_id(self) -> int:
        """Padding id (-1: none)."""
        return self._native.pad_id

    @property
    def eot_id(self) -> int:
        """End-of-turn id when it differs from EOS (-1: none)."""
        return self._native.eot_id

    @property
    def add_bos(self) -> bool:
        """Whether encode(add_special=True) prepends BOS."""
        return self._native.add_bos

    @property
    def add_eos(self) -> bool:
        """Whether encode(add_special=True) appends EOS."""
        return self._native.add_eos

    @property
    def pre(self) -> str:
        """The pre-tokenizer type's canonical name."""
        return self._native.pre

    def __repr__(self) -> str:
        return f"nef.llm.Tokenizer(vocab_size={self.vocab_size}, pre={self.pre!r})"


class Generation:
    """One generation in progress: iterate it for the text of each generated token as it is
    produced (a piece may be "" while a character or a possible stop string is incomplete).
    After the loop, `stats` has the token counts, prefill and decode seconds and the stop
    reason ("eos", "stop_string", "max_tokens", "context"); `tokens` the generated ids."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> str:
        return next(self._native)

    @property
    def stats(self) -> dict:
        return dict(self._native.stats)

    @property
    def tokens(self) -> list[int]:
        return list(self._native.tokens)

    @property
    def prompt_tokens(self) -> list[int]:
        return list(self._native.prompt_tokens)

    def text(self) -> str:
        """Runs the generation to its end and returns the rest of its text."""
        return "".join(self)


class Session:
    """One sequence over a model: the KV cache and the position. eval(tokens) runs tokens at the
    current position and returns the logits after the last one (numpy float32 [vocab])."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def eval(self, tokens: Iterable[int]):
        return self._native.eval(_ids(tokens))

    def profile(self, tokens: Iterable[int]) -> dict:
        """eval(tokens) with every kernel timed: {"seconds": the step graph's run (of the last
        chunk), "kernels": [{"kernel", "op", "seconds"}, ...] in execution order}."""
        seconds, kernels = self._native.eval_profiled(_ids(tokens))
        return {"seconds": seconds, "kernels": list(kernels)}

    @property
    def position(self) -> int:
        return self._native.position

    def truncate(self, pos: int = 0) -> None:
        """Forgets the tokens from `pos` on."""
        self._native.truncate(operator.index(pos))


class Model:
    """A language model loaded from a GGUF file (nef.llm.load)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self.tokenizer = Tokenizer._wrap(native.tokenizer, native.chat_template or None)

    @property
    def config(self) -> dict:
        """Architecture and sizes read from the file, and the KV-cache capacity ("context")."""
        return dict(self._native.config)

    def session(self) -> Session:
        return Session(self._native.session())

    def generate(self, prompt: str, max_tokens: int = 256, temperature: float = 0.0,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                 repeat_penalty: float = 1.0, repeat_last_n: int = 64, seed: int = 0,
                 stop: Sequence[str] | None = None, ignore_eos: bool = False) -> Generation:
        """Streams the continuation of `prompt` (special tokens written in it are parsed):
        temperature 0 is greedy; otherwise top-k, top-p and min-p filter and `seed` makes the
        sampling repeatable. Stops at an end-of-generation token, a stop string (never
        emitted) or max_tokens."""
        return Generation(self._native.generate(
            str(prompt), int(max_tokens), float(temperature), int(top_k), float(top_p),
            float(min_p), float(repeat_penalty), int(repeat_last_n), int(seed),
            [str(x) for x in (stop or [])], bool(ignore_eos)))

    def chat(self, messages: Iterable[Any] | str, max_tokens: int = 256, temperature: float = 0.0,
             top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
             repeat_penalty: float = 1.0, repeat_last_n: int = 64, seed: int = 0,
             stop: Sequence[str] | None = None, ignore_eos: bool = False) -> Generation:
        """Streams the assistant's answer to a conversation ({"role", "content"} dicts, or one
        str as the user's message), rendered with the model's chat template."""
        msgs = ([("user", messages)] if isinstance(messages, str) else _messages(messages))
        return Generation(self._native.chat(
            msgs, int(max_tokens), float(temperature), int(top_k), float(top_p), float(min_p),
            float(repeat_penalty), int(repeat_last_n), int(seed),
            [str(x) for x in (stop or [])], bool(ignore_eos)))


def load(path: Any, context: int = 0, prefill_chunk: int = 128,
         devices: Any = "cpu", kv_type: str = "float16") -> Model:
    """Loads a GGUF language model (Llama family: llama, mistral). context: the KV-cache
    capacity in tokens (0: the model's trained context, at most 4096); prefill_chunk: prompt
    tokens per step; devices: where its graphs may run, a name or a list as NEF_DEVICES takes
    them ("cpu" by default: only the CPU backend has the quantized kernels, and the other
    backends' drivers then stay unloaded); kv_type: the KV cache's element type, "float16" (as
    llama.cpp keeps it: keys and values are rounded to it before attention) or "float32". The
    weights stay in the mapped file."""
    import os
    names = [devices] if isinstance(devices, str) else [str(d) for d in devices]
    return Model(_nef.llm_load(os.fspath(path), operator.index(context),
                               operator.index(prefill_chunk), names, str(kv_type)))
