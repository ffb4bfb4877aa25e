"""A real published recurrent model: the Silero VAD v6 voice-activity detector that the
faster-whisper package ships (faster_whisper/assets/silero_vad_v6.onnx, opset 18: a Conv
encoder, then an LSTM that carries its state h, c between calls as graph inputs and outputs).
Installed by `make venv` with --no-deps (only the model file is used; faster_whisper itself is
never imported).

Audio is framed the way faster-whisper's SileroVADModel frames it (512-sample chunks with the
previous chunk's last 64 samples in front, [chunks, 576]). NEF's outputs (speech_probs, hn, cn)
are compared with ONNX Runtime's: within rtol 1e-4 and atol 2e-5 (the probabilities are
sigmoids of the decoder; the state passes through the LSTM's tanh/sigmoid). Streaming in pieces
with the state fed back must equal one call over all chunks."""

import importlib.util
import os

import numpy as np
import pytest

import nef
from real_model_cli import find_cli, import_and_run

ort = pytest.importorskip("onnxruntime")
_spec = importlib.util.find_spec("faster_whisper")
if _spec is None or not _spec.submodule_search_locations:
    pytest.skip("faster-whisper (the packaged Silero VAD model) is not installed",
                allow_module_level=True)
MODEL = os.path.join(list(_spec.submodule_search_locations)[0], "assets", "silero_vad_v6.onnx")

RTOL, ATOL = 1e-4, 2e-5
SR, CHUNK, CONTEXT = 16000, 512, 64


def resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """A two-pole resonance (a formant) at freq Hz."""
    r = np.exp(-np.pi * bandwidth / SR)
    a1, a2 = -2 * r * np.cos(2 * np.pi * freq / SR), r * r
    y = np.zeros_like(x)
    y1 = y2 = 0.0
    for i, v in enumerate(x):
        y1, y2 = v - a1 * y1 - a2 * y2, y1
        y[i] = y1
    return y


def audio(seconds: float, seed: int) -> np.ndarray:
    """Speech-like sound: a glottal pulse train with a moving pitch through the formants of a
    sequence of vowels (quarter-second syllables), with pauses and a silent start, in
    512-sample chunks. The detector scores it as speech (~0.9) and the pauses as not."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR) // CHUNK * CHUNK
    t = np.arange(n) / SR
    periods = np.cumsum(120 + 30 * np.sin(2 * np.pi * 2 * t)) / SR
    source = (np.diff(np.floor(periods), prepend=0) > 0) + 0.02 * rng.standard_normal(n)
    y = np.zeros(n)
    vowels = [(700, 1200, 2600), (300, 2300, 3000), (500, 900, 2400), (400, 1900, 2600)]
    syllable = SR // 4
    for k in range(0, n, syllable):
        f1, f2, f3 = vowels[(k // syllable) % len(vowels)]
        s = source[k:k + syllable]
        v = resonator(s, f1, 80) + 0.5 * resonator(s, f2, 100) + 0.25 * resonator(s, f3, 120)
        y[k:k + syllable] = v * np.hanning(len(v))
    y *= 0.5 / np.abs(y).max()
    y *= np.sin(2 * np.pi * 0.5 * t) > -0.3  # pauses
    y[: n // 8] = 0
    return (y + 0.003 * rng.standard_normal(n)).astype(np.float32)


def frames(a: np.ndarray) -> np.ndarray:
    """[chunks, 576]: each chunk with the previous chunk's last 64 samples (zeros first)."""
    batched = a.reshape(-1, CHUNK)
    context = np.roll(batched[:, -CONTEXT:].copy(), 1, axis=0)
    context[0] = 0
    return np.ascontiguousarray(np.concatenate([context, batched], axis=1))


@pytest.fixture(scope="module")
def engines():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return nef.from_onnx(MODEL), ort.InferenceSession(MODEL, so,
                                                      providers=["CPUExecutionProvider"])


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def zero_state():
    return np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32)


@pytest.mark.parametrize("seconds,seed", [(2.0, 1), (1.0, 2)])
def test_matches_onnxruntime(engines, seconds, seed):
    g, sess = engines
    x = frames(audio(seconds, seed))
    h, c = zero_state()
    feed = {"input": x, "h": h, "c": c}
    got = g.run(feed)
    want = dict(zip(["speech_probs", "hn", "cn"], sess.run(None, feed)))
    for k in ("speech_probs", "hn", "cn"):
        assert got[k].shape == want[k].shape, k
        close(got[k], want[k])
    # Not a trivial input for the detector: it finds speech and non-speech chunks.
    p = got["speech_probs"]
    assert p.shape == (x.shape[0],) and p.min() < 0.2 and p.max() > 0.8


def test_streaming_with_state_fed_back(engines):
    g, sess = engines
    x = frames(audio(1.5, 3))
    h, c = zero_state()
    whole = g.run({"input": x, "h": h, "c": c})
    probs = []
    for piece in np.array_split(np.arange(x.shape[0]), [1, 2, 9, 20]):
        feed = {"input": x[piece], "h": h, "c": c}
        got = g.run(feed)
        want = sess.run(None, feed)
        for k, w in zip(("speech_probs", "hn", "cn"), want):
            close(got[k], w)
        probs.append(got["speech_probs"])
        h, c = got["hn"], got["cn"]
    close(np.concatenate(probs), whole["speech_probs"])
    close(h, whole["hn"])
    close(c, whole["cn"])


@pytest.mark.skipif(find_cli() is None, reason="the nef executable was not found (NEF_CLI)")
def test_nef_import_and_run_cli(engines, tmp_path):
    """Three inputs (audio frames and the LSTM state), three outputs, through the CLI."""
    _, sess = engines
    x = frames(audio(1.0, 4))
    h, c = zero_state()
    feed = {"input": x, "h": h, "c": c}
    want = dict(zip(["speech_probs", "hn", "cn"], sess.run(None, feed)))
    got = import_and_run(MODEL, feed, tmp_path, dims={"seq_len": x.shape[0]})
    assert sorted(got) == sorted(want)
    for k in want:
        close(got[k], want[k])
