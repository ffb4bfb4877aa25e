// nef._nef's language-model runtime classes (src/llm/model.h, generate.h): LlmModel,
// LlmSession, LlmGeneration. python/nef/llm.py wraps them (nef.llm.load, Model.generate, chat).
// The GIL is released while a model runs, so other Python threads go on.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "llm/generate.h"
#include "llm/model.h"
#include "nef/error.h"
#include "nef/tensor.h"
#include "shape_caster.h"

namespace nefpy {

namespace nb = nanobind;
using namespace nb::literals;

namespace {

struct PyModel {
  std::shared_ptr<const nef::llm::Model> model;
};
struct PySession {
  std::shared_ptr<const nef::llm::Model> model;  // keeps the model alive
  std::unique_ptr<nef::llm::Session> session;
};
struct PyGeneration {
  std::unique_ptr<nef::llm::Generation> gen;
};

nef::llm::GenerateOptions options(int64_t max_tokens, double temperature, int64_t top_k,
                                  double top_p, double min_p, double repeat_penalty,
                                  int64_t repeat_last_n, uint64_t seed,
                                  std::vector<std::string> stop, bool ignore_eos) {
  nef::llm::GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = temperature;
  o.sampling.top_k = top_k;
  o.sampling.top_p = top_p;
  o.sampling.min_p = min_p;
  o.sampling.repeat_penalty = repeat_penalty;
  o.sampling.repeat_last_n = repeat_last_n;
  o.sampling.seed = seed;
  o.stop = std::move(stop);
  o.ignore_eos = ignore_eos;
  return o;
}

nb::dict config_dict(const nef::llm::ModelConfig& c, int64_t context) {
  nb::dict d;
  d["arch"] = c.arch;
  d["name"] = c.name;
  d["n_layer"] = c.n_layer;
  d["n_embd"] = c.n_embd;
  d["n_ff"] = c.n_ff;
  d["n_head"] = c.n_head;
  d["n_head_kv"] = c.n_head_kv;
  d["head_dim"] = c.head_dim;
  d["n_vocab"] = c.n_vocab;
  d["n_ctx_train"] = c.n_ctx_train;
  d["context"] = context;
  d["rope_base"] = c.rope_base;
  d["rope_dims"] = c.rope_dims;
  d["rms_eps"] = c.rms_eps;
  d["has_chat_template"] = !c.chat_template.empty();
  return d;
}

nb::dict stats_dict(const nef::llm::GenerateStats& s) {
  nb::dict d;
  d["prompt_tokens"] = s.prompt_tokens;
  d["generated_tokens"] = s.generated_tokens;
  d["prompt_seconds"] = s.prompt_seconds;
  d["decode_seconds"] = s.decode_seconds;
  d["stop_reason"] = s.stop_reason;
  return d;
}

#define NEF_GEN_ARGS                                                                               \
  "max_tokens"_a = 256, "temperature"_a = 0.0, "top_k"_a = 40, "top_p"_a = 0.95, "min_p"_a = 0.05, \
  "repeat_penalty"_a = 1.0, "repeat_last_n"_a = 64, "seed"_a = 0,                                  \
  "stop"_a = std::vector<std::string>{}, "ignore_eos"_a = false

}  // namespace

void bind_llm_model(nb::module_& m) {
  nb::class_<PyModel>(m, "LlmModel")
      .def_prop_ro(
          "config",
          [](const PyModel& p) { return config_dict(p.model->config(), p.model->context()); })
      .def_prop_ro("chat_template",
                   [](const PyModel& p) { return p.model->config().chat_template; })
      .def_prop_ro(
          "tokenizer",
          [](const PyModel& p) -> const nef::llm::Tokenizer& { return p.model->tokenizer(); },
          nb::rv_policy::reference_internal)
      .def("session",
           [](const PyModel& p) {
             return PySession{p.model, std::make_unique<nef::llm::Session>(p.model)};
           })
      .def(
          "generate",
          [](const PyModel& p, const std::string& prompt, int64_t max_tokens, double temperature,
             int64_t top_k, double top_p, double min_p, double repeat_penalty,
             int64_t repeat_last_n, uint64_t seed, std::vector<std::string> stop, bool ignore_eos) {
            auto o = options(max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                             repeat_last_n, seed, std::move(stop), ignore_eos);
            nb::gil_scoped_release release;
            return PyGeneration{std::make_unique<nef::llm::Generation>(p.model, prompt, o)};
          },
          "prompt"_a, NEF_GEN_ARGS)
      .def(
          "chat",
          [](const PyModel& p, const std::vector<std::pair<std::string, std::string>>& messages,
             int64_t max_tokens, double temperature, int64_t top_k, double top_p, double min_p,
             double repeat_penalty, int64_t repeat_last_n, uint64_t seed,
             std::vector<std::string> stop, bool ignore_eos) {
            auto o = options(max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                             repeat_last_n, seed, std::move(stop), ignore_eos);
            std::vector<nef::llm::ChatMessage> msgs;
            for (const auto& [role, content] : messages) msgs.push_back({role, content});
            nb::gil_scoped_release release;
            return PyGeneration{std::make_unique<nef::llm::Generation>(
                nef::llm::Generation::chat(p.model, msgs, o))};
          },
          "messages"_a, NEF_GEN_ARGS);

  nb::class_<PySession>(m, "LlmSession")
      .def("eval_profiled",
           [](PySession& s, const std::vector<int64_t>& tokens) {
             std::vector<int32_t> ids(tokens.begin(), tokens.end());
             nef::RunProfile prof;
             {
               nb::gil_scoped_release release;
               const bool was = nef::profiling();
               nef::set_profiling(true);
               try {
                 s.session->eval(ids);
               } catch (...) {
                 nef::set_profiling(was);
                 throw;
               }
               nef::set_profiling(was);
               prof = nef::last_profile();
             }
             nb::list out;
             for (const nef::KernelProfile& k : prof.kernels) {
               nb::dict e;
               e["kernel"] = k.kernel;
               e["op"] = k.op;
               e["seconds"] = k.seconds;
               out.append(e);
             }
             return nb::make_tuple(prof.seconds, out);
           })
      .def_prop_ro("position", [](const PySession& s) { return s.session->position(); })
      .def(
          "truncate", [](PySession& s, int64_t pos) { s.session->truncate(pos); }, "pos"_a = 0)
      .def("eval", [](PySession& s, const std::vector<int64_t>& tokens) {
        std::vector<int32_t> ids;
        ids.reserve(tokens.size());
        for (int64_t t : tokens) {
          if (t < INT32_MIN || t > INT32_MAX)
            throw nef::ValidationError(nef::str("[llm] token id ", t, " is out of range"));
          ids.push_back(int32_t(t));
        }
        std::vector<float> logits;
        {
          nb::gil_scoped_release release;
          logits = s.session->eval(ids);
        }
        auto* data = new std::vector<float>(std::move(logits));
        nb::capsule owner(data,
                          [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
        return nb::ndarray<nb::numpy, float, nb::ndim<1>>(data->data(), {data->size()}, owner);
      });

  nb::class_<PyGeneration>(m, "LlmGeneration")
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__",
           [](PyGeneration& g) {
             std::optional<std::string> piece;
             {
               nb::gil_scoped_release release;
               piece = g.gen->next();
             }
             if (!piece) throw nb::stop_iteration();
             return *piece;
           })
      .def_prop_ro("stats", [](const PyGeneration& g) { return stats_dict(g.gen->stats()); })
      .def_prop_ro("tokens", [](const PyGeneration& g) { return g.gen->tokens(); })
      .def_prop_ro("prompt_tokens", [](const PyGeneration& g) { return g.gen->prompt_tokens(); });

  m.def(
      "llm_load",
      [](const std::string& path, int64_t context, int64_t prefill_chunk,
         std::vector<std::string> devices, const std::string& kv_type) {
        nef::llm::LoadOptions o;
        o.context = context;
        o.prefill_chunk = prefill_chunk;
        o.devices = std::move(devices);
        std::optional<nef::DType> kv = nef::dtype_from_name(kv_type);
        if (!kv)
          throw nef::ValidationError("[llm] kv_type must be float16 or float32, not '" + kv_type +
                                     "'");
        o.kv_type = *kv;
        nb::gil_scoped_release release;
        return PyModel{nef::llm::Model::load(path, o)};
      },
      "path"_a, "context"_a = 0, "prefill_chunk"_a = 128,
      "devices"_a = std::vector<std::string>{"cpu"}, "kv_type"_a = "float16");
}

}  // namespace nefpy
